"""The front of `fhir-plugin serve`: which one (nginx or gunicorn alone, FHIR_PLUGIN_FRONT), nginx's
configuration and refusal pages, and nginx as a child process of gunicorn's master.

Apart from server.py (gunicorn, and why nginx is in front of its sync workers: its docstring)
because this is all about another program, its configuration text and its process, and server.py
only asks it for a front and starts, checks and stops it.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

NGINX_INSTALL = "apt-get install nginx"  # Debian and Ubuntu; root's, or with sudo
FRONTS = ("auto", "nginx", "none")
# nginx is often in an sbin directory that is not on a user's PATH.
_NGINX_PLACES = ("/usr/sbin/nginx", "/usr/local/sbin/nginx", "/usr/local/nginx/sbin/nginx")
# Larger than gunicorn's limits (a request line of 4094 bytes, a header of 8190), so that gunicorn
# refuses first, with its own words; nginx refuses only what is beyond even these.
_HEADER_BUFFER = 16384
_HEADER_BUFFERS = 4
_OUTCOME_PATH = "/.fhir-plugin-outcome/"  # nginx's error pages; `internal`: no client can ask for them


def find_nginx() -> str | None:
    """The nginx executable: on PATH, or in the sbin directories packages put it in."""
    found = shutil.which("nginx")
    if found:
        return found
    return next((place for place in _NGINX_PLACES if os.access(place, os.X_OK)), None)


def choose_front(settings: Mapping[str, Any]) -> tuple[str | None, str | None]:
    """(the nginx to start, or None for gunicorn alone; a warning to print, or None).
    Raises SystemExit with a one-line message for a bad FHIR_PLUGIN_FRONT, or for `nginx` without
    nginx installed."""
    front = str(settings["FHIR_PLUGIN_FRONT"]).lower()
    if front not in FRONTS:
        raise SystemExit(f"fhir-plugin: FHIR_PLUGIN_FRONT must be one of {', '.join(FRONTS)}, not {front!r}")
    for name in ("FHIR_PLUGIN_CLIENT_TIMEOUT", "FHIR_PLUGIN_WORKER_TIMEOUT"):
        if int(settings[name]) < 1:  # 0 would be no time at all to nginx, and no timeout to gunicorn
            raise SystemExit(f"fhir-plugin: {name} must be at least 1 (seconds), not {settings[name]}")
    if front == "none":
        return None, None
    nginx = find_nginx()
    if nginx:
        return nginx, None
    if front == "nginx":
        raise SystemExit(f"fhir-plugin: FHIR_PLUGIN_FRONT=nginx, but nginx is not installed ({NGINX_INSTALL})")
    return None, (f"nginx not found: serving with gunicorn alone, where slow or idle clients can hold every "
                  f"worker; install nginx ({NGINX_INSTALL}) and start again, or set FHIR_PLUGIN_FRONT=none "
                  f"behind a proxy of your own")


def describe_front(settings: Mapping[str, Any]) -> str:
    """What listens in front of the workers, in words (for the start-up banner and the benchmark)."""
    nginx, _ = choose_front(settings)
    if nginx is None:
        return "gunicorn alone"
    return f"nginx in front (client timeout {settings['FHIR_PLUGIN_CLIENT_TIMEOUT']} s)"


# Status -> the text of nginx's own refusal. The status line's reason phrase comes first, as in
# gunicorn's (write_outcome_error), then what was wrong.
def nginx_outcomes(settings: Mapping[str, Any]) -> dict[int, str]:
    client, worker = settings["FHIR_PLUGIN_CLIENT_TIMEOUT"], settings["FHIR_PLUGIN_WORKER_TIMEOUT"]
    largest = _HEADER_BUFFER * _HEADER_BUFFERS
    return {
        400: "Bad Request: the request could not be read as HTTP/1.1",
        404: "Not Found",
        408: f"Request Timeout: the request was not received within {client} s",
        413: f"Payload Too Large: the request body is longer than {settings['FHIR_PLUGIN_MAX_REQUEST_BYTES']} bytes",
        414: f"URI Too Long: the request line is longer than {_HEADER_BUFFER} bytes",
        431: f"Request Header Fields Too Large: a header is longer than {_HEADER_BUFFER} bytes, or all of them "
             f"than {largest}",
        500: "Internal Server Error",
        502: f"Bad Gateway: no answer from the workers (a request that runs longer than {worker} s is "
             f"stopped)",
        503: "Service Unavailable: the workers are not reachable",
        504: f"Gateway Timeout: no answer from the workers within {worker} s",
    }


def nginx_config(directory: Path, host: str, port: int, upstream: str, settings: Mapping[str, Any]) -> str:
    """nginx.conf for an unprivileged nginx run with `-p directory`: listening on host:port,
    passing requests to the gunicorn socket `upstream`, everything it writes inside `directory`."""
    client = int(settings["FHIR_PLUGIN_CLIENT_TIMEOUT"])
    worker = int(settings["FHIR_PLUGIN_WORKER_TIMEOUT"])
    listen = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    # nginx started by root would run its workers as `nobody`, who cannot reach the socket in this
    # root-only directory: they run as the user who started the server instead.
    user = ""
    if os.geteuid() == 0:
        import grp
        import pwd

        user = f"user {pwd.getpwuid(os.geteuid()).pw_name} {grp.getgrgid(os.getegid()).gr_name};\n"
    errors = "\n".join(f"        error_page {494 if status == 431 else status} {'=431 ' if status == 431 else ''}"
                       f"{_OUTCOME_PATH}{status}.json;" for status in nginx_outcomes(settings))
    temp = " ".join(f"{kind}_temp_path {directory}/{kind};" for kind in ("client_body", "proxy", "fastcgi",
                                                                       "uwsgi", "scgi"))
    return f"""# Written by fhir-plugin serve for this run; deploy/nginx.conf is the one for a system nginx.
{user}# One process, the server's child: a master's workers would outlive a master that is killed
# (and keep the port), where this one is stopped by the kernel when the server dies (_child_setup).
master_process off;
pid {directory}/nginx.pid;
error_log stderr error;
events {{
    worker_connections 4096;
}}
http {{
    access_log off;
    server_tokens off;
    {temp}
    upstream fhir_plugin_workers {{
        server unix:{upstream};
    }}
    server {{
        listen {listen} backlog=4096;
        client_header_timeout {client}s;
        client_body_timeout {client}s;
        send_timeout {client}s;
        keepalive_timeout {client}s;
        reset_timedout_connection on;
        large_client_header_buffers {_HEADER_BUFFERS} {_HEADER_BUFFER};
        client_max_body_size {int(settings["FHIR_PLUGIN_MAX_REQUEST_BYTES"]) + 1};
        client_body_buffer_size 128k;
        # The app compresses its answers itself (web/compression.py): never twice
        gzip off;
{errors}
        location {_OUTCOME_PATH} {{
            internal;
            root {directory};
            default_type application/fhir+json;
            etag off;
        }}
        proxy_set_header Host $http_host;
        proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
        proxy_connect_timeout 5s;
        proxy_send_timeout {worker + 5}s;
        proxy_read_timeout {worker + 5}s;
        proxy_buffer_size 16k;
        proxy_buffers 32 16k;
        location / {{
            proxy_pass http://fhir_plugin_workers;
        }}
        # nginx refuses TRACE and CONNECT itself, with a 405 page of its own: the workers answer them
        # instead, as any method a route does not take (a 405 OperationOutcome with the route's Allow)
        error_page 405 = @workers;
        location @workers {{
            proxy_pass http://fhir_plugin_workers;
        }}
        # a run-time load (admin token) may be larger than a request: the app bounds it by
        # FHIR_PLUGIN_MAX_LOAD_BYTES and answers beyond it with its own too-costly
        location /admin/ {{
            client_max_body_size {max(int(settings["FHIR_PLUGIN_MAX_REQUEST_BYTES"]), int(settings["FHIR_PLUGIN_MAX_LOAD_BYTES"])) + 1};
            proxy_pass http://fhir_plugin_workers;
        }}
    }}
}}
"""


def _child_setup() -> None:
    """In nginx's process before exec: Linux sends it SIGTERM when the server's master dies, however
    it dies, so that no nginx outlives the workers it fronts (elsewhere, nothing); and as many open
    files as its 4096 connections need (two each), as far as the hard limit allows."""
    import ctypes
    import resource

    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = 8192 if hard == resource.RLIM_INFINITY else min(8192, hard)
    if soft != resource.RLIM_INFINITY and soft < wanted:
        resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))


class NginxFront:
    """nginx as a child of gunicorn's master: started once the workers' socket exists, checked on
    every turn of the master's loop, stopped when the master stops."""

    def __init__(self, binary: str, host: str, port: int, settings: Mapping[str, Any]) -> None:
        self.binary, self.host, self.port, self.settings = binary, host, port, settings
        self.directory = Path(tempfile.mkdtemp(prefix="fhir-plugin-nginx-"))
        self.socket_path = self.directory / "gunicorn.sock"
        self.process: subprocess.Popen[bytes] | None = None
        # The workers fork from the master with this object and leave through the same frames
        # (gunicorn ends a worker with SystemExit); only the master may stop what it started.
        self.owner = os.getpid()

    def start(self) -> None:
        import json

        from .terminology.outcome import http_outcome

        pages = self.directory / _OUTCOME_PATH.strip("/")
        pages.mkdir()
        for status, text in nginx_outcomes(self.settings).items():
            (pages / f"{status}.json").write_text(json.dumps(http_outcome(status, text)))
        config = self.directory / "nginx.conf"
        config.write_text(nginx_config(self.directory, self.host, self.port, str(self.socket_path), self.settings))
        self.process = subprocess.Popen([self.binary, "-p", str(self.directory), "-e", "stderr", "-c", str(config),
                                         "-g", "daemon off;"], preexec_fn=_child_setup)
        self._wait_listening()

    def _wait_listening(self, seconds: float = 10.0) -> None:
        """Until nginx has its port; a start that fails (the port is taken) ends here. nginx
        writes its pid file once it has bound its ports (a connection would not tell: whatever
        holds a taken port accepts it)."""
        assert self.process is not None
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"nginx could not start (exit status {self.process.returncode}; its message "
                                   f"is above)")
            if (self.directory / "nginx.pid").exists():
                return
            time.sleep(0.05)

    def check(self) -> None:
        from gunicorn.errors import HaltServer

        if self.process is not None and self.process.poll() is not None:
            raise HaltServer("nginx in front stopped; stopping the workers", 1)

    def stop(self) -> None:
        if os.getpid() != self.owner:
            return
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        shutil.rmtree(self.directory, ignore_errors=True)
