"""`fhir-plugin reload`: the content of a running `fhir-plugin serve` loaded again, without a
dropped request (reloading.py). Finds the server through the pid file it writes
(FHIR_PLUGIN_PID_FILE, or the default named by its port), sends it SIGHUP, and waits for the
reload to end. Exit status 0 reloaded, 1 the reload failed (the server serves on what it had; the
reason is printed), 2 no server found, or no end within --timeout.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any


def _reload(args: argparse.Namespace, settings: dict[str, Any]) -> int:
    from .config import pid_file
    from .reloading import NoServer, request_reload

    port = settings["FHIR_PLUGIN_PORT"] if args.port is None else args.port
    path = Path(args.pid_file) if args.pid_file else pid_file(settings, port)
    try:
        status, text = request_reload(path, args.timeout)
    except NoServer as missing:
        print(f"fhir-plugin: no server to reload: {missing}", file=sys.stderr)
        return 2
    print(f"fhir-plugin: {text}", file=sys.stderr if status else sys.stdout)
    return status


def add_parser(commands: Any) -> None:
    parser = commands.add_parser(
        "reload", help="load the content of a running `fhir-plugin serve` again (SIGHUP), without a dropped request",
        description="Sends SIGHUP to the server found through its pid file and waits for the reload to end: exit "
                    "status 0 reloaded, 1 failed (the server keeps serving what it had; the reason is printed), 2 "
                    "no server found or no end within --timeout.")
    parser.add_argument("--port", type=int, help="the server's port, which names its pid file (FHIR_PLUGIN_PORT, "
                                                 "default 8080)")
    parser.add_argument("--pid-file", metavar="FILE", help="the server's pid file (default: FHIR_PLUGIN_PID_FILE, "
                                                           "else the one named by the port)")
    parser.add_argument("--timeout", type=float, default=600.0, metavar="SECONDS",
                        help="seconds to wait for the reload to end (default 600); 0: send the signal only")


HANDLERS = {"reload": _reload}
