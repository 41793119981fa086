"""Attack: hostile XML bodies against a real server (`fhir-plugin serve`, one worker, default
settings). External entities (XXE: a `file:///etc/passwd` entity, and one naming a file of ours
with a secret in it, and one over the network), entity expansion (billion laughs, in content and
in an attribute), a DOCTYPE without entities, XInclude, parameter entities, malformed XML,
elements nested far deeper than any limit, and XML in another encoding. Each gets a 400
OperationOutcome at once, in the format asked for (XML with `Accept: application/fhir+xml`, JSON
by default), reads no file and makes no connection, leaves the worker's memory where it was, and
writes nothing to the log; the same worker answers a $lookup right after, and while clients
repeat the attacks.
"""

from __future__ import annotations

import socket
import threading
import time
from pathlib import Path

import pytest
import requests
from fhir_xml import parse
from helpers import CPT, MESSAGE_ID_URL
from live_server import running_server
from test_attack_memory import rss_mib, worker_of

FHIR_XML = "application/fhir+xml"
F = "{http://hl7.org/fhir}"
SECRET = "secret-7c1f0b2e-the-server-must-never-read-this"
DOCTYPE_TEXT = "The request body has a DOCTYPE: FHIR XML has none, and this server reads no DTD or entity declarations"


@pytest.fixture(scope="module")
def secret_file(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("secret") / "secret.txt"
    path.write_text(SECRET)
    return path


@pytest.fixture(scope="module")
def listener():
    """A port on this machine that counts the connections made to it (an XXE over the network)."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(16)
    sock.settimeout(0.2)
    accepted: list[int] = []
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            try:
                connection, _ = sock.accept()
            except OSError:
                continue
            accepted.append(1)
            connection.close()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield sock.getsockname()[1], accepted
    stop.set()
    thread.join()
    sock.close()


@pytest.fixture(scope="module")
def server(service, content_cache_dir, tmp_path_factory):
    home = tmp_path_factory.mktemp("xdg-cache")
    (home / "fhir_plugin").symlink_to(content_cache_dir, target_is_directory=True)
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("XDG_CACHE_HOME", str(home))
        with running_server() as live:
            patch.undo()
            yield live


def lookup_with(name_value: str) -> str:
    return (f'<Parameters xmlns="http://hl7.org/fhir"><parameter><name value="system"/><valueUri value="{CPT}"/>'
            f'</parameter><parameter><name value="code"/><valueCode value="{name_value}"/></parameter></Parameters>')


def laughs(levels: int = 10) -> str:
    entities = ['<!ENTITY lol0 "lol">'] + [f'<!ENTITY lol{n} "{("&lol" + str(n - 1) + ";") * 10}">'
                                           for n in range(1, levels)]
    return "".join(entities)


def attacks(secret: Path, port: int) -> list[tuple[str, bytes, str, str | None]]:
    """(name, body, message id, exact text or None)."""
    doctype = lambda internal: f'<?xml version="1.0"?>\n<!DOCTYPE Parameters [{internal}]>\n'  # noqa: E731
    return [
        ("XXE /etc/passwd", (doctype('<!ENTITY x SYSTEM "file:///etc/passwd">') + lookup_with("&x;")).encode(),
         "BODY_XML_DOCTYPE", DOCTYPE_TEXT),
        ("XXE a secret file", (doctype(f'<!ENTITY x SYSTEM "file://{secret}">') + lookup_with("&x;")).encode(),
         "BODY_XML_DOCTYPE", DOCTYPE_TEXT),
        ("XXE over the network", (doctype(f'<!ENTITY x SYSTEM "http://127.0.0.1:{port}/x">') + lookup_with("&x;"))
         .encode(), "BODY_XML_DOCTYPE", DOCTYPE_TEXT),
        ("external DTD", (f'<!DOCTYPE Parameters SYSTEM "http://127.0.0.1:{port}/fhir.dtd">' + lookup_with("97116"))
         .encode(), "BODY_XML_DOCTYPE", DOCTYPE_TEXT),
        ("parameter entities", (doctype(f'<!ENTITY % p SYSTEM "file://{secret}"> %p;') + lookup_with("97116")).encode(),
         "BODY_XML_DOCTYPE", DOCTYPE_TEXT),
        ("billion laughs", (doctype(laughs()) + lookup_with("&lol9;")).encode(), "BODY_XML_DOCTYPE", DOCTYPE_TEXT),
        ("billion laughs in an attribute", (doctype(laughs()) + lookup_with("&lol9;").replace(
            'value="97116"', 'value="&lol9;"')).encode(), "BODY_XML_DOCTYPE", DOCTYPE_TEXT),
        ("a doctype after a long comment", (b"<!--" + b"-" * 10_000 + b"-->" + b"<!doctype Parameters>"
                                            + lookup_with("97116").encode()), "BODY_XML_DOCTYPE", DOCTYPE_TEXT),
        ("an undeclared entity", lookup_with("&x;").encode(), "BODY_NOT_XML", None),
        ("XInclude", (f'<Parameters xmlns="http://hl7.org/fhir" xmlns:xi="http://www.w3.org/2001/XInclude">'
                      f'<xi:include href="file://{secret}" parse="text"/></Parameters>').encode(), "BODY_NOT_FHIR_XML",
         "The request body is not FHIR XML: <include> in <Parameters> is not in the FHIR namespace http://hl7.org/fhir"),
        ("malformed", b'<Parameters xmlns="http://hl7.org/fhir"><parameter><name value="code"/>', "BODY_NOT_XML", None),
        ("not even XML", b"\x00\xff{not xml", "BODY_NOT_XML", None),
        ("UTF-16", lookup_with("97116").encode("utf-16"), "BODY_NOT_XML", None),
        ("50,000 levels deep", b'<Parameters xmlns="http://hl7.org/fhir">' + b"<parameter>" * 50_000,
         "BODY_XML_TOO_DEEP", "The request body nests its XML elements too deep: as FHIR JSON it would nest arrays "
                              "and objects deeper than the 100 levels this server accepts"),
        ("250 parts deep", ('<Parameters xmlns="http://hl7.org/fhir"><parameter><name value="p"/>'
                            + '<part><name value="p"/>' * 248 + "</part>" * 248 + "</parameter></Parameters>").encode(),
         "BODY_XML_TOO_DEEP", None),
    ]


def send(server, body: bytes, accept: str | None = None) -> requests.Response:
    headers = {"Content-Type": FHIR_XML, **({"Accept": accept} if accept else {})}
    return requests.post(f"{server.r4}/CodeSystem/$lookup", data=body, headers=headers, timeout=10)


def message_of(answer: requests.Response) -> tuple[str, str]:
    if answer.headers["Content-Type"].split(";")[0] == FHIR_XML:
        issue = parse(answer.content).find(f"{F}issue")
        return (issue.find(f"{F}extension/{F}valueString").get("value"),
                issue.find(f"{F}details/{F}text").get("value"))
    issue = answer.json()["issue"][0]
    assert issue["extension"][0]["url"] == MESSAGE_ID_URL
    return issue["extension"][0]["valueString"], issue["details"]["text"]


@pytest.mark.skipif(not Path("/proc/self/status").is_file(), reason="reads the worker's memory from /proc")
def test_every_hostile_body_is_a_400_and_nothing_else_happens(server, secret_file, listener):
    port, accepted = listener
    worker = worker_of(server.pid)
    assert send(server, lookup_with("97116").encode()).status_code == 200  # warm: the XML modules are loaded
    memory = rss_mib(worker)
    logged = len(server.output())
    for name, body, message_id, text in attacks(secret_file, port):
        for accept in (FHIR_XML, None):
            started = time.monotonic()
            answer = send(server, body, accept)
            took = time.monotonic() - started
            assert answer.status_code == 400, (name, answer.text[:300])
            assert answer.headers["Content-Type"].split(";")[0] == (FHIR_XML if accept else "application/fhir+json"), name
            found_id, found_text = message_of(answer)
            assert found_id == message_id, (name, found_text)
            if text is not None:
                assert found_text == text, name
            assert SECRET not in answer.text and "root:" not in answer.text, name
            assert took < 2, (name, took)
    assert accepted == []  # no connection to the network entity's or the DTD's address
    assert worker_of(server.pid) == worker  # the same worker: nothing killed it
    assert rss_mib(worker) < memory + 20
    assert len(server.output()) == logged
    assert send(server, lookup_with("97116").encode(), FHIR_XML).status_code == 200


def test_clients_repeating_the_attacks_do_not_stop_a_lookup(server, secret_file, listener):
    port, _ = listener
    bodies = [body for _, body, _, _ in attacks(secret_file, port)]
    stop = threading.Event()
    statuses: list[int] = []

    def attacker() -> None:
        n = 0
        while not stop.is_set() and n < 2000:
            statuses.append(send(server, bodies[n % len(bodies)]).status_code)
            n += 1

    threads = [threading.Thread(target=attacker) for _ in range(3)]
    for thread in threads:
        thread.start()
    try:
        time.sleep(0.5)
        for _ in range(5):
            started = time.monotonic()
            answer = send(server, lookup_with("97116").encode(), FHIR_XML)
            assert answer.status_code == 200
            assert parse(answer.content).find(f"{F}parameter/{F}valueString").get("value") == "CPT"
            assert time.monotonic() - started < 5
    finally:
        stop.set()
        for thread in threads:
            thread.join()
    assert statuses and set(statuses) == {400}
