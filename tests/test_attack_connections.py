"""Slow clients cannot starve the workers: a server started as `make serve` starts it (nginx in
front of two gunicorn sync workers) with a client timeout of 1 s, and clients that connect and say
nothing, reconnect when closed, send their headers or a body a byte a second, or never read a
large answer. Meanwhile another client's `$lookup` of CPT 97116 is answered, within a generous
10 s. Before the front, each of these attacks kept every worker busy until gunicorn's 30 s worker
timeout, or for as long as the attackers liked (`bench/slow_clients.py` measures them).

Also: what nginx refuses itself is an OperationOutcome, and nginx and the workers live and die
together. Every test that needs a server needs nginx, and skips, with the command that installs
it, on a machine without it.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import requests

from fhir_plugin.config import load_settings
from fhir_plugin.nginx_front import NGINX_INSTALL, choose_front, find_nginx, nginx_config, nginx_outcomes
from helpers import CPT, DISPLAY_97116, FHIR_JSON, ICD
from live_server import LiveServer, clean_environ, running_server

BOUND = 10.0  # seconds: generous, on a shared machine; the timeouts below are 1 s
CLIENT_TIMEOUT = 1
SETTINGS = {"FHIR_PLUGIN_CLIENT_TIMEOUT": str(CLIENT_TIMEOUT), "FHIR_PLUGIN_MAX_EXPANSION": "100000"}
NO_NGINX = f"needs nginx ({NGINX_INSTALL})"
needs_nginx = pytest.mark.skipif(find_nginx() is None, reason=NO_NGINX)
# About 6 MB of answer: more than the loopback socket buffers hold, so that a worker writing it to a
# client that never reads would wait.
LARGE_EXPAND = json.dumps({"resourceType": "Parameters", "parameter": [
    {"name": "valueSet", "resource": {"resourceType": "ValueSet", "status": "active",
                                      "compose": {"include": [{"system": ICD}]}}},
    {"name": "count", "valueInteger": 50000}]}).encode()


@pytest.fixture(scope="module")
def server() -> Iterator[LiveServer]:
    if find_nginx() is None:
        pytest.skip(NO_NGINX)
    with running_server(workers=2, make_serve=True, settings=SETTINGS) as live:
        yield live


def lookup_is_answered(server: LiveServer) -> float:
    """One `$lookup` of CPT 97116 from a well-behaved client: its exact display, within BOUND."""
    began = time.monotonic()
    with requests.get(f"{server.r4}/CodeSystem/$lookup", params={"system": CPT, "code": "97116"},
                      timeout=BOUND) as response:
        took = time.monotonic() - began
        assert response.status_code == 200, response.text
        [display] = [p["valueString"] for p in response.json()["parameter"] if p["name"] == "display"]
    assert display == DISPLAY_97116
    assert took < BOUND
    return took


def lookups_are_answered(server: LiveServer, seconds: float) -> int:
    """`lookup_is_answered` one after another for `seconds`; how many."""
    answered = 0
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        lookup_is_answered(server)
        answered += 1
    return answered


class Attack:
    """`clients` threads, each opening a connection and running `one` on it, again when the server
    closes it (unless `reconnect` is False). `lifetimes`: how long the server kept each
    connection open, for those it closed."""

    def __init__(self, server: LiveServer, clients: int, one: Callable[[socket.socket, threading.Event], None],
                 reconnect: bool = True, settle: float = 1.0) -> None:
        self.port, self.one, self.reconnect, self.settle = server.port, one, reconnect, settle
        self.stopping = threading.Event()
        self.connections = 0
        self.lifetimes: list[float] = []
        self.threads = [threading.Thread(target=self._run, daemon=True) for _ in range(clients)]

    def _run(self) -> None:
        while not self.stopping.is_set():
            sock = socket.socket()
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)  # unread answers stay on the server
            began = time.monotonic()
            try:
                sock.connect(("127.0.0.1", self.port))
                self.connections += 1
                if self.one(sock, self.stopping):
                    self.lifetimes.append(time.monotonic() - began)
            except OSError:
                self.lifetimes.append(time.monotonic() - began)
            finally:
                sock.close()
            if not self.reconnect:
                self.stopping.wait()

    def __enter__(self) -> Attack:
        for thread in self.threads:
            thread.start()
        time.sleep(self.settle)  # the attackers take the workers first, if they can
        return self

    def __exit__(self, *exc: object) -> None:
        self.stopping.set()
        for thread in self.threads:
            thread.join(timeout=BOUND)


def closed_by_server(sock: socket.socket, stopping: threading.Event) -> bool:
    """Say nothing; True once the server closes the connection."""
    sock.settimeout(0.2)
    while not stopping.is_set():
        try:
            if not sock.recv(65536):
                return True
        except TimeoutError:
            continue
    return False


def dripping(head: bytes, drip: bytes) -> Callable[[socket.socket, threading.Event], bool]:
    """Send `head`, then `drip` a byte a second; True once the server closes the connection."""
    def one(sock: socket.socket, stopping: threading.Event) -> bool:
        sock.sendall(head)
        sock.settimeout(0.01)
        for byte in drip:
            if stopping.wait(1.0):
                return False
            sock.sendall(bytes([byte]))
            try:
                if not sock.recv(65536):
                    return True
            except TimeoutError:
                pass
        return False
    return one


def never_reads(sock: socket.socket, stopping: threading.Event) -> bool:
    """Ask for a large $expand and read nothing of the answer."""
    sock.sendall(b"POST /r4/ValueSet/$expand HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/fhir+json\r\n"
                 b"Content-Length: %d\r\n\r\n" % len(LARGE_EXPAND) + LARGE_EXPAND)
    stopping.wait()
    return False


# --- the attacks ----------------------------------------------------------------------------------


def test_serve_starts_nginx_in_front_by_default(server):
    lines = server.output().splitlines()
    banner = next(n for n, line in enumerate(lines) if " serving on " in line)  # after the load's progress
    assert lines[banner + 4] == f"  front: nginx in front (client timeout {CLIENT_TIMEOUT} s)"
    with requests.get(f"{server.r4}/metadata", timeout=BOUND) as response:
        assert (response.status_code, response.headers["Server"]) == (200, "nginx")


def test_two_idle_sockets_are_closed_and_hold_no_worker(server):
    with Attack(server, 2, closed_by_server, reconnect=False, settle=0.5) as attack:
        lookup_is_answered(server)
        time.sleep(CLIENT_TIMEOUT + 1.5)
    assert attack.connections == 2
    assert len(attack.lifetimes) == 2 and max(attack.lifetimes) < BOUND


def test_idle_sockets_that_reconnect_when_closed(server):
    with Attack(server, 2, closed_by_server) as attack:
        assert lookups_are_answered(server, seconds=2.0) > 0
    assert attack.connections >= 4  # each was closed after the client timeout, and came back


def test_four_clients_sending_headers_at_one_byte_a_second(server):
    slowloris = dripping(b"GET /r4/metadata HTTP/1.1\r\n", b"Host: 127.0.0.1\r\nX-Slow: " + b"a" * 100)
    with Attack(server, 4, slowloris) as attack:
        assert lookups_are_answered(server, seconds=2.0) > 0
    # nginx gives the whole request head CLIENT_TIMEOUT, however steadily the bytes come.
    assert attack.lifetimes and max(attack.lifetimes) < CLIENT_TIMEOUT + 3


def test_clients_sending_a_body_at_one_byte_a_second(server):
    head = (b"POST /r4/ValueSet/$expand HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/fhir+json\r\n"
            b"Content-Length: %d\r\n\r\n" % len(LARGE_EXPAND))
    # A byte a second is within the timeout between two reads: nginx holds these bodies, and no
    # worker sees the request until its body is complete.
    with Attack(server, 2, dripping(head, LARGE_EXPAND)):
        assert lookups_are_answered(server, seconds=2.0) > 0


def test_clients_that_never_read_a_large_expand(server):
    with Attack(server, 2, never_reads, settle=2.0):
        assert lookups_are_answered(server, seconds=2.0) > 0


# --- what nginx refuses itself is an OperationOutcome ---------------------------------------------


def raw_request(server: LiveServer, request: bytes) -> tuple[int, str, dict]:
    """Send `request` as it is; the answer's status, Content-Type and JSON body (read to its
    Content-Length: nginx may keep the connection open)."""
    with socket.create_connection(("127.0.0.1", server.port), timeout=BOUND) as sock:
        sock.sendall(request)
        received = b""
        while b"\r\n\r\n" not in received:
            chunk = sock.recv(65536)
            assert chunk, received
            received += chunk
        head, _, body = received.partition(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        headers = {k.lower(): v for k, v in (line.split(": ", 1) for line in lines[1:])}
        while len(body) < int(headers["content-length"]):
            chunk = sock.recv(65536)
            assert chunk, body
            body += chunk
    return int(lines[0].split()[1]), headers["content-type"], json.loads(body)


@pytest.mark.parametrize("request_bytes, status, code, text", [
    (b"GET /r4/metadata?" + b"a" * 20000 + b" HTTP/1.1\r\nHost: x\r\n\r\n", 414, "too-long",
     "URI Too Long: the request line is longer than 16384 bytes"),
    (b"GET /r4/metadata HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 20000 + b"\r\n\r\n", 431, "too-long",
     "Request Header Fields Too Large: a header is longer than 16384 bytes, or all of them than 65536"),
    (b"POST /r4/ValueSet/$expand HTTP/1.1\r\nHost: x\r\nContent-Length: 5000000\r\n\r\n", 413, "too-long",
     "Payload Too Large: the request body is longer than 1048576 bytes"),
    (b"GET / HTTP/1.1\r\n\r\n", 400, "invalid", "Bad Request: the request could not be read as HTTP/1.1"),
    (b"GET /.fhir-plugin-outcome/400.json HTTP/1.1\r\nHost: x\r\n\r\n", 404, "not-found", "Not Found"),
])
def test_what_nginx_refuses_is_an_operation_outcome(server, request_bytes, status, code, text):
    assert raw_request(server, request_bytes) == (status, FHIR_JSON, {
        "resourceType": "OperationOutcome", "issue": [{"severity": "error", "code": code, "details": {"text": text}}]})


def test_what_gunicorn_refuses_behind_nginx_is_still_its_operation_outcome(server):
    status, content_type, body = raw_request(
        server, b"GET /r4/metadata?" + b"a" * 5000 + b" HTTP/1.1\r\nHost: x\r\n\r\n")
    assert (status, content_type) == (414, FHIR_JSON)
    assert body["issue"][0]["details"]["text"].startswith("URI Too Long: ")


# --- choosing the front ---------------------------------------------------------------------------


def test_front_none_is_gunicorn_alone():
    assert choose_front(load_settings({"FHIR_PLUGIN_FRONT": "none"}, environ={})) == (None, None)


def test_front_must_be_one_of_three():
    with pytest.raises(SystemExit) as refused:
        choose_front(load_settings({"FHIR_PLUGIN_FRONT": "apache"}, environ={}))
    assert str(refused.value) == "fhir-plugin: FHIR_PLUGIN_FRONT must be one of auto, nginx, none, not 'apache'"


def test_without_nginx_auto_falls_back_with_the_install_command(monkeypatch):
    monkeypatch.setattr("fhir_plugin.nginx_front.find_nginx", lambda: None)
    assert choose_front(load_settings(environ={})) == (None, (
        "nginx not found: serving with gunicorn alone, where slow or idle clients can hold every worker; install "
        "nginx (apt-get install nginx) and start again, or set FHIR_PLUGIN_FRONT=none behind a proxy of your own"))
    with pytest.raises(SystemExit) as refused:
        choose_front(load_settings({"FHIR_PLUGIN_FRONT": "nginx"}, environ={}))
    assert str(refused.value) == (
        "fhir-plugin: FHIR_PLUGIN_FRONT=nginx, but nginx is not installed (apt-get install nginx)")


@pytest.mark.parametrize("name", ["FHIR_PLUGIN_CLIENT_TIMEOUT", "FHIR_PLUGIN_WORKER_TIMEOUT"])
def test_timeouts_are_at_least_a_second(name):
    with pytest.raises(SystemExit) as refused:
        choose_front(load_settings({name: 0}, environ={}))
    assert str(refused.value) == f"fhir-plugin: {name} must be at least 1 (seconds), not 0"


@needs_nginx
def test_a_port_nginx_cannot_take_stops_the_start_with_its_message():
    """The port is checked before the content is loaded (issue 14): nginx is never started on a
    taken port. (If something takes the port between that check and nginx's start, nginx's own
    message and `nginx could not start` end the start instead; that race is not reproduced here.)"""
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        environ = clean_environ() | SETTINGS | {"FHIR_PLUGIN_PORT": str(port), "FHIR_PLUGIN_FRONT": "nginx"}
        started = subprocess.run([str(Path(sys.executable).with_name("fhir-plugin")), "serve"], env=environ,
                                 capture_output=True, text=True, timeout=120)
    assert (started.returncode, started.stdout, started.stderr) == (
        1, "", f"fhir-plugin: cannot listen on 127.0.0.1:{port}: the port is already in use\n")


@needs_nginx
def test_the_generated_configuration_passes_nginx_t(tmp_path):
    settings = load_settings(environ={})
    config = tmp_path / "nginx.conf"
    config.write_text(nginx_config(tmp_path, "127.0.0.1", 8080, str(tmp_path / "gunicorn.sock"), settings))
    checked = subprocess.run([str(find_nginx()), "-t", "-p", str(tmp_path), "-e", "stderr", "-c", str(config)],
                             capture_output=True, text=True, timeout=BOUND)
    assert checked.returncode == 0, checked.stderr
    assert "test is successful" in checked.stderr
    assert set(nginx_outcomes(settings)) == {400, 404, 408, 413, 414, 431, 500, 502, 503, 504}


# --- nginx and the workers live and die together --------------------------------------------------


def nginx_of(server: LiveServer) -> int:
    """The pid of the nginx master that `server`'s gunicorn master started."""
    children = Path(f"/proc/{server.pid}/task/{server.pid}/children").read_text().split()
    [nginx] = [int(pid) for pid in children if Path(f"/proc/{pid}/comm").read_text().strip() == "nginx"]
    return nginx


def gone(pid: int, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
            if Path(f"/proc/{pid}/stat").read_text().split()[2] == "Z":
                return True  # dead, waiting for its parent to collect it
        except ProcessLookupError:
            return True
        time.sleep(0.1)
    return False


def listening_directory(server: LiveServer) -> Path:
    """The private directory of the workers' socket and nginx's files, from gunicorn's log."""
    [socket_path] = [line.split("Listening at: unix:", 1)[1].split(" ")[0] for line in server.output().splitlines()
                     if "Listening at: unix:" in line]
    return Path(socket_path).parent


def test_a_worker_that_leaves_leaves_the_front_alone(server):
    """gunicorn ends a worker (stopped, or past FHIR_PLUGIN_WORKER_TIMEOUT) with SystemExit, through
    the frames it forked in: the front those frames started is the master's to stop, not its."""
    nginx, directory = nginx_of(server), listening_directory(server)
    worker = next(pid for pid in map(int, Path(f"/proc/{server.pid}/task/{server.pid}/children").read_text().split())
                  if pid != nginx)
    os.kill(worker, signal.SIGTERM)
    assert gone(worker, BOUND)
    lookup_is_answered(server)
    assert nginx_of(server) == nginx and (directory / "nginx.conf").is_file()


@needs_nginx
def test_the_server_stops_and_cleans_up_when_its_nginx_dies():
    """So that a supervisor (deploy/fhir-plugin.service) starts both again."""
    with running_server(make_serve=True, settings=SETTINGS) as live:
        directory = listening_directory(live)
        assert (directory / "nginx.conf").is_file()
        os.kill(nginx_of(live), signal.SIGKILL)
        assert gone(live.pid, BOUND)
        assert "Reason: nginx in front stopped; stopping the workers" in live.output()
        assert not directory.exists()


@needs_nginx
def test_nginx_dies_with_the_server_however_it_dies():
    with running_server(make_serve=True, settings=SETTINGS) as live:
        nginx, directory = nginx_of(live), listening_directory(live)
        os.kill(live.pid, signal.SIGKILL)  # no clean-up at all: the kernel tells nginx
        assert gone(nginx, BOUND)
    shutil.rmtree(directory)  # what a SIGKILL leaves behind
