"""Slow clients against `fhir-plugin serve`: how many $lookup answers a well-behaved client gets
while others hold connections open without finishing them.

Starts the server as `make serve` does (2 workers unless told otherwise; extra FHIR_PLUGIN_*
settings may be given as NAME=VALUE), then runs each attack for --seconds while one client asks
`$lookup` of CPT 97116 over and over, one request at a time, and reports the answers it got, the
median and the slowest. The attacks:

- idle: 2 sockets that connect and send nothing;
- reconnect: 2 sockets that send nothing and connect again as soon as the server closes them;
- slowloris: 4 clients sending a request's headers at 1 byte/s (again when closed);
- slow body: 2 clients sending a POST body at 1 byte/s (again when closed);
- unread answer: 2 clients asking for a 15 MB `$expand` and never reading it (again when closed).

Loopback only; every wait is bounded.
"""

from __future__ import annotations

import argparse
import http.client
import os
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
LOOKUP = "/r4/CodeSystem/$lookup?system=http://www.ama-assn.org/go/cpt&code=97116"
EXPAND_BODY = (b'{"resourceType":"Parameters","parameter":[{"name":"valueSet","resource":{"resourceType":"ValueSet",'
               b'"status":"active","compose":{"include":[{"system":"http://hl7.org/fhir/sid/icd-10-cm"}]}}},'
               b'{"name":"includeDesignations","valueBoolean":true},{"name":"count","valueInteger":100000}]}')


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start(port: int, workers: int, extra: dict[str, str]) -> subprocess.Popen[bytes]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("FHIR_PLUGIN_")}
    env.update(FHIR_PLUGIN_PORT=str(port), FHIR_PLUGIN_WORKERS=str(workers), FHIR_PLUGIN_MAX_EXPANSION="200000",
               **extra)
    process = subprocess.Popen([str(BIN / "fhir-plugin"), "serve"], cwd=ROOT, env=env, stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL, start_new_session=True)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/r4/metadata", timeout=2) as answer:
                if answer.status == 200:
                    return process
        except OSError:
            time.sleep(0.2)
    os.killpg(process.pid, signal.SIGKILL)
    raise SystemExit("the server did not start")


def stop(process: subprocess.Popen[bytes]) -> None:
    try:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=20)
    except (ProcessLookupError, subprocess.TimeoutExpired):
        os.killpg(process.pid, signal.SIGKILL)


class Attack:
    """Threads that each run `one` (a connection's life) again and again until stopped."""

    def __init__(self, port: int, clients: int, one: Callable[[socket.socket, threading.Event], None]) -> None:
        self.port, self.stopping = port, threading.Event()
        self.connections = 0
        self.threads = [threading.Thread(target=self._loop, args=(one,), daemon=True) for _ in range(clients)]

    def _loop(self, one: Callable[[socket.socket, threading.Event], None]) -> None:
        while not self.stopping.is_set():
            sock = socket.socket()
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)  # a small window: unread bytes stay queued
            try:
                sock.connect(("127.0.0.1", self.port))
                self.connections += 1
                one(sock, self.stopping)
            except OSError:
                pass
            finally:
                sock.close()
            self.stopping.wait(0.05)

    def __enter__(self) -> "Attack":
        for thread in self.threads:
            thread.start()
        time.sleep(1.0)  # let the attackers take their places first
        return self

    def __exit__(self, *exc: object) -> None:
        self.stopping.set()
        for thread in self.threads:
            thread.join(timeout=5)


def _until_closed(sock: socket.socket, stopping: threading.Event) -> None:
    sock.settimeout(0.5)
    while not stopping.is_set():
        try:
            if not sock.recv(65536):
                return
        except TimeoutError:
            continue


def idle_once(sock: socket.socket, stopping: threading.Event) -> None:
    """Hold the connection, and do not reconnect."""
    _until_closed(sock, stopping)
    stopping.wait()


def idle(sock: socket.socket, stopping: threading.Event) -> None:
    _until_closed(sock, stopping)


def _drip(sock: socket.socket, stopping: threading.Event, head: bytes, drip: bytes) -> None:
    sock.sendall(head)
    sock.settimeout(0.01)
    for byte in drip:
        if stopping.wait(1.0):
            return
        sock.sendall(bytes([byte]))
        try:
            if not sock.recv(65536):
                return
        except TimeoutError:
            pass


def slowloris(sock: socket.socket, stopping: threading.Event) -> None:
    _drip(sock, stopping, b"GET /r4/metadata HTTP/1.1\r\n", b"Host: 127.0.0.1\r\n" + b"X-Slow: " + b"a" * 4000)


def slow_body(sock: socket.socket, stopping: threading.Event) -> None:
    body = EXPAND_BODY
    head = (f"POST /r4/ValueSet/$expand HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/fhir+json\r\n"
            f"Content-Length: {len(body)}\r\n\r\n").encode()
    _drip(sock, stopping, head + body[:10], body[10:])


def unread_answer(sock: socket.socket, stopping: threading.Event) -> None:
    head = (f"POST /r4/ValueSet/$expand HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/fhir+json\r\n"
            f"Content-Length: {len(EXPAND_BODY)}\r\n\r\n").encode()
    sock.sendall(head + EXPAND_BODY)
    # Never read; wait until the server gives up on us (a reset shows as an error on send).
    sock.settimeout(1.0)
    while not stopping.wait(1.0):
        try:
            sock.send(b"\r\n")
        except OSError:
            return


ATTACKS: dict[str, tuple[int, Callable[[socket.socket, threading.Event], None]]] = {
    "2 idle sockets": (2, idle_once),
    "2 idle sockets, reconnecting": (2, idle),
    "4 slowloris (headers at 1 byte/s)": (4, slowloris),
    "2 slow bodies (1 byte/s)": (2, slow_body),
    "2 never read a 15 MB $expand": (2, unread_answer),
}


def probe(port: int, seconds: float, per_request: float) -> list[float]:
    """Latencies of sequential $lookups for `seconds` (a request that fails counts as its time)."""
    latencies: list[float] = []
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        began = time.monotonic()
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=per_request)
        try:
            connection.request("GET", LOOKUP)
            answer = connection.getresponse()
            answer.read()
            if answer.status == 200:
                latencies.append(time.monotonic() - began)
        except OSError:
            pass
        finally:
            connection.close()
    return latencies


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=30, help="length of each attack (default 30)")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--only", help="run only the attacks whose name contains this")
    parser.add_argument("setting", nargs="*", help="FHIR_PLUGIN_NAME=VALUE for the server")
    args = parser.parse_args()
    extra = dict(item.split("=", 1) for item in args.setting)
    port = free_port()
    server = start(port, args.workers, extra)
    print(f"| attack ({args.seconds:.0f} s each) | $lookup answers | median s | slowest s | attacker connections |")
    print("|---|---|---|---|---|")
    try:
        for name, (clients, one) in ATTACKS.items():
            if args.only and args.only not in name:
                continue
            with Attack(port, clients, one) as attack:
                latencies = probe(port, args.seconds, per_request=args.seconds)
            median = statistics.median(latencies) if latencies else float("nan")
            slowest = max(latencies) if latencies else float("nan")
            print(f"| {name} | {len(latencies)} | {median:.3f} | {slowest:.2f} | {attack.connections} |", flush=True)
            time.sleep(1.0)
    finally:
        stop(server)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
