"""The production files in deploy/: the systemd unit that restarts the server, and the system
nginx's server block in front of it (README, "Running in production").

The unit is checked with `systemd-analyze verify` and the nginx configuration with `nginx -t`;
then a real nginx with the shipped server block serves a live `fhir-plugin serve` (gunicorn
alone, as the unit runs it): a `$lookup` through it, its refusals as OperationOutcomes, and idle
clients that cannot starve the workers behind it. A test whose tool is missing skips with the
command that installs it (`.ci/run` installs both).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from fhir_plugin.config import DEFAULTS, load_settings
from fhir_plugin.nginx_front import find_nginx, nginx_outcomes
from fhir_plugin.terminology.outcome import http_outcome
from helpers import CPT, DISPLAY_97116, FHIR_JSON
from live_server import LiveServer, free_port, running_server

ROOT = Path(__file__).resolve().parent.parent
UNIT = ROOT / "deploy" / "fhir-plugin.service"
NGINX_CONF = ROOT / "deploy" / "nginx.conf"
BOUND = 10.0
needs_nginx = pytest.mark.skipif(find_nginx() is None, reason="needs nginx (apt-get install nginx)")
needs_systemd = pytest.mark.skipif(shutil.which("systemd-analyze") is None,
                                   reason="needs systemd-analyze (apt-get install systemd)")


def unit_settings() -> dict[str, str]:
    """The unit's `Key=value` lines, and its Environment= lines as NAME -> value."""
    found: dict[str, str] = {}
    for line in UNIT.read_text().splitlines():
        if line.startswith("Environment="):
            name, value = line.removeprefix("Environment=").split("=", 1)
            found[name] = value
        elif "=" in line and not line.startswith("#"):
            key, value = line.split("=", 1)
            found[key] = value
    return found


# --- the systemd unit -----------------------------------------------------------------------------


@needs_systemd
def test_the_unit_passes_systemd_analyze_verify(tmp_path):
    # verify also checks that ExecStart's program exists: this checkout's stands in for /opt's.
    unit = tmp_path / "fhir-plugin.service"
    unit.write_text(UNIT.read_text()
                    .replace("/opt/fhir-plugin/.venv/bin/fhir-plugin", str(Path(sys.executable).with_name("fhir-plugin")))
                    .replace("WorkingDirectory=/opt/fhir-plugin", f"WorkingDirectory={ROOT}"))
    checked = subprocess.run(["systemd-analyze", "verify", str(unit)], capture_output=True, text=True, timeout=60)
    # An unknown key or a bad value is only a warning to verify, so its silence is checked too.
    assert (checked.returncode, checked.stdout, checked.stderr) == (0, "", "")


def test_the_unit_restarts_the_server_behind_the_system_nginx():
    unit = unit_settings()
    assert (unit["Restart"], unit["RestartSec"], unit["ExecStart"]) == (
        "always", "2", "/opt/fhir-plugin/.venv/bin/fhir-plugin serve")
    assert (unit["FHIR_PLUGIN_FRONT"], unit["FHIR_PLUGIN_HOST"], unit["FHIR_PLUGIN_PORT"]) == ("none", "127.0.0.1", "8080")
    assert int(unit["FHIR_PLUGIN_WORKER_TIMEOUT"]) == DEFAULTS["FHIR_PLUGIN_WORKER_TIMEOUT"]
    # Stopping waits for gunicorn's graceful stop (30 s) before killing what is left.
    assert int(unit["TimeoutStopSec"]) > 30


def test_the_unit_reloads_through_fhir_plugin_reload():
    unit = unit_settings()
    assert (unit["ExecReload"], unit["RuntimeDirectory"], unit["FHIR_PLUGIN_PID_FILE"]) == (
        "/opt/fhir-plugin/.venv/bin/fhir-plugin reload", "fhir-plugin", "/run/fhir-plugin/fhir-plugin.pid")


# --- the nginx server block -----------------------------------------------------------------------


def directive(name: str) -> str:
    [value] = re.findall(rf"^\s*{name} ([^;]+);", NGINX_CONF.read_text(), re.M)
    return value


def test_the_nginx_timeouts_and_limits_are_the_defaults():
    client, worker = DEFAULTS["FHIR_PLUGIN_CLIENT_TIMEOUT"], DEFAULTS["FHIR_PLUGIN_WORKER_TIMEOUT"]
    for name in ("client_header_timeout", "client_body_timeout", "send_timeout", "keepalive_timeout"):
        assert directive(name) == f"{client}s", name
    assert (directive("proxy_read_timeout"), directive("proxy_send_timeout")) == (f"{worker + 5}s", f"{worker + 5}s")
    assert directive("client_max_body_size") == str(DEFAULTS["FHIR_PLUGIN_MAX_REQUEST_BYTES"] + 1)
    assert directive("large_client_header_buffers") == "4 16k"


def test_the_nginx_refusals_are_the_servers_operation_outcomes():
    """The same texts as the nginx that `fhir-plugin serve` starts, with the default settings."""
    pages = dict(re.findall(r"return (\d+) '(.*)';", NGINX_CONF.read_text()))
    expected = nginx_outcomes(load_settings(environ={}))
    assert {int(status): json.loads(body) for status, body in pages.items()} == {
        status: http_outcome(status, text) for status, text in expected.items()}


def nginx_main(directory: Path, server_block: str) -> Path:
    """A main nginx.conf around the shipped server block, for an nginx run with `-p directory`."""
    user = ""
    if os.geteuid() == 0:  # its workers would be `nobody`, who cannot enter this directory
        import grp
        import pwd

        user = f"user {pwd.getpwuid(os.geteuid()).pw_name} {grp.getgrgid(os.getegid()).gr_name};"
    (directory / "fhir-plugin.conf").write_text(server_block)
    temp = " ".join(f"{kind}_temp_path {directory}/{kind};" for kind in ("client_body", "proxy", "fastcgi", "uwsgi",
                                                                       "scgi"))
    main = directory / "nginx.conf"
    main.write_text(f"{user}\nworker_processes 1;\npid {directory}/nginx.pid;\nerror_log stderr error;\n"
                    f"events {{ worker_connections 256; }}\nhttp {{ access_log off; {temp}\n"
                    f"include {directory}/fhir-plugin.conf; }}\n")
    return main


@needs_nginx
def test_the_nginx_conf_passes_nginx_t(tmp_path):
    main = nginx_main(tmp_path, NGINX_CONF.read_text())
    checked = subprocess.run([str(find_nginx()), "-t", "-p", str(tmp_path), "-e", "stderr", "-c", str(main)],
                             capture_output=True, text=True, timeout=60)
    assert checked.returncode == 0, checked.stderr
    assert "test is successful" in checked.stderr


# --- the shipped nginx in front of a live server --------------------------------------------------


@pytest.fixture(scope="module")
def behind_nginx(tmp_path_factory) -> Iterator[tuple[LiveServer, int]]:
    """A live `fhir-plugin serve` as the unit runs it (gunicorn alone, 2 workers), and the port of
    an nginx with the shipped server block in front of it."""
    if find_nginx() is None:
        pytest.skip("needs nginx (apt-get install nginx)")
    directory = tmp_path_factory.mktemp("nginx")
    with running_server(workers=2, make_serve=True, settings={"FHIR_PLUGIN_FRONT": "none",
                                                                           "FHIR_PLUGIN_MAX_EXPANSION": "100000"}) as live:
        port = free_port()
        block = (NGINX_CONF.read_text().replace("listen 80;", f"listen 127.0.0.1:{port};")
                 .replace("server 127.0.0.1:8080;", f"server 127.0.0.1:{live.port};"))
        main = nginx_main(directory, block)
        nginx = subprocess.Popen([str(find_nginx()), "-p", str(directory), "-e", "stderr", "-c", str(main),
                                  "-g", "daemon off;"])
        try:
            deadline = time.monotonic() + BOUND
            while True:
                try:
                    socket.create_connection(("127.0.0.1", port), timeout=1).close()
                    break
                except OSError:
                    assert nginx.poll() is None and time.monotonic() < deadline, "nginx did not start"
                    time.sleep(0.05)
            yield live, port
        finally:
            nginx.terminate()
            nginx.wait(timeout=BOUND)


def lookup(port: int) -> requests.Response:
    return requests.get(f"http://127.0.0.1:{port}/r4/CodeSystem/$lookup", params={"system": CPT, "code": "97116"},
                        timeout=BOUND)


def test_a_lookup_through_the_shipped_nginx(behind_nginx):
    _, port = behind_nginx
    with lookup(port) as response:
        assert (response.status_code, response.headers["Content-Type"], response.headers["Server"]) == (
            200, FHIR_JSON, "nginx")
        [display] = [p["valueString"] for p in response.json()["parameter"] if p["name"] == "display"]
        assert display == DISPLAY_97116


def test_the_shipped_nginx_answers_its_refusals_with_an_operation_outcome(behind_nginx):
    _, port = behind_nginx
    with socket.create_connection(("127.0.0.1", port), timeout=BOUND) as sock:
        sock.sendall(b"GET / HTTP/1.1\r\n\r\n")  # no Host: nginx refuses it
        received = b""
        while chunk := sock.recv(65536):
            received += chunk
    head, _, body = received.partition(b"\r\n\r\n")
    assert head.split(b"\r\n")[0] == b"HTTP/1.1 400 Bad Request"
    assert b"Content-Type: application/fhir+json" in head
    assert json.loads(body) == http_outcome(400, "Bad Request: the request could not be read as HTTP/1.1")


def test_idle_clients_do_not_starve_the_workers_behind_the_shipped_nginx(behind_nginx):
    """Two idle connections to nginx: gunicorn alone would be stopped by them until its worker
    timeout (30 s); behind nginx the workers never see them."""
    _, port = behind_nginx
    idle = [socket.create_connection(("127.0.0.1", port), timeout=BOUND) for _ in range(2)]
    try:
        time.sleep(0.5)
        began = time.monotonic()
        answers = [lookup(port).status_code for _ in range(5)]
        assert answers == [200] * 5
        assert time.monotonic() - began < BOUND
    finally:
        for sock in idle:
            sock.close()


def test_a_client_that_never_reads_does_not_hold_a_worker_behind_the_shipped_nginx(behind_nginx):
    _, port = behind_nginx
    body = json.dumps({"resourceType": "Parameters", "parameter": [
        {"name": "valueSet", "resource": {"resourceType": "ValueSet", "status": "active", "compose": {
            "include": [{"system": "http://hl7.org/fhir/sid/icd-10-cm"}]}}},
        {"name": "count", "valueInteger": 50000}]}).encode()  # about 6 MB: more than socket buffers hold
    readers = []
    for _ in range(2):
        sock = socket.socket()
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        sock.connect(("127.0.0.1", port))
        sock.sendall(b"POST /r4/ValueSet/$expand HTTP/1.1\r\nHost: x\r\nContent-Type: application/fhir+json\r\n"
                     b"Content-Length: %d\r\n\r\n" % len(body) + body)
        readers.append(sock)
    try:
        time.sleep(3.0)  # both answers are being written, or are written, by now
        with lookup(port) as response:
            assert response.status_code == 200
    finally:
        for sock in readers:
            sock.close()


def test_the_shipped_nginx_passes_compression_through_once(behind_nginx):
    """The app compresses (gzip off in nginx): an answer is gzipped once, and a gzipped body reaches
    the app as it was sent."""
    import gzip

    live, port = behind_nginx
    url = f"http://127.0.0.1:{port}/r4/CodeSystem/cpt-97116-fragment"
    with requests.get(url, headers={"Accept-Encoding": "gzip"}, stream=True, timeout=BOUND) as packed:
        assert (packed.headers["Content-Encoding"], packed.headers["Vary"], packed.headers["Server"]) == (
            "gzip", "Accept-Encoding", "nginx")
        raw = packed.raw.read(decode_content=False)
    with requests.get(f"{live.r4}/CodeSystem/cpt-97116-fragment", headers={"Accept-Encoding": None},
                      timeout=BOUND) as plain:
        assert gzip.decompress(raw) == plain.content
    body = gzip.compress(json.dumps({"resourceType": "Parameters", "parameter": [
        {"name": "system", "valueUri": CPT}, {"name": "code", "valueCode": "97116"}]}).encode())
    with requests.post(f"http://127.0.0.1:{port}/r4/CodeSystem/$lookup", data=body, timeout=BOUND,
                       headers={"Content-Type": FHIR_JSON, "Content-Encoding": "gzip"}) as answer:
        assert answer.status_code == 200
        [display] = [p["valueString"] for p in answer.json()["parameter"] if p["name"] == "display"]
        assert display == DISPLAY_97116


def test_the_nginx_configurations_do_not_compress():
    from fhir_plugin.nginx_front import nginx_config

    assert directive("gzip") == "off"
    generated = nginx_config(Path("/tmp/x"), "127.0.0.1", 8080, "/tmp/x/gunicorn.sock", load_settings(environ={}))
    assert re.findall(r"^\s*gzip ([^;]+);", generated, re.M) == ["off"]
