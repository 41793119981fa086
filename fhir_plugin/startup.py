"""What `fhir-plugin serve` says while it starts: the port checked before anything is loaded, the
load's progress, then a banner of everything served, where the compiled-content cache is and what
the front is; and the logging of a server (the access log's JSON lines, errors) on stderr."""

from __future__ import annotations

import logging
import socket
import sys
from collections.abc import Mapping
from typing import Any

from .config import base_content_paths, extra_content_paths
from .extension import Startup
from .runtime.inventory import inventory_lines
from .runtime.pgschema import shown_conninfo
from .web.observe import write_access_lines_to


def port_problem(host: str, port: int) -> str | None:
    """Why `host:port` cannot be listened on (taken, not an address of this machine, privileged), or
    None. Bound and released at once, as nginx and gunicorn bind it (SO_REUSEADDR): a port in
    TIME_WAIT is not taken. Something may still take the port in between; then the front's own
    message says so."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror as error:
        return f"cannot listen on {host}:{port}: {error.strerror}"
    family, kind, proto, _, address = infos[0]
    try:
        with socket.socket(family, kind, proto) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            probe.bind(address)
    except OSError as error:
        reason = "the port is already in use" if error.errno == 98 else (error.strerror or str(error))
        return f"cannot listen on {host}:{port}: {reason}"
    return None


def configure_logging(stream: Any = None) -> None:
    """The server's logs on stderr: access lines as they are (JSON, written straight to the file
    descriptor), everything else through `logging`, prefixed."""
    stream = stream or sys.stderr
    try:
        write_access_lines_to(stream.fileno())
    except (AttributeError, OSError, ValueError):  # a stream without a descriptor: through its handler
        write_access_lines_to(None)
    access = logging.getLogger("fhir_plugin.access")
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logging.Formatter("%(message)s"))
    access.handlers[:] = [handler]
    access.setLevel(logging.INFO)
    access.propagate = False
    package = logging.getLogger("fhir_plugin")
    other = logging.StreamHandler(stream)
    other.setFormatter(logging.Formatter("fhir-plugin %(levelname)s %(name)s: %(message)s"))
    package.handlers[:] = [other]
    package.setLevel(logging.INFO)
    package.propagate = False


def content_lines(settings: Mapping[str, Any]) -> list[str]:
    """Where the content comes from, and how to add to it or replace it."""
    base = "FHIR_PLUGIN_CONTENT" if settings.get("FHIR_PLUGIN_CONTENT") else "the bundled content"
    lines = [f"  content: {', '.join(str(p) for p in base_content_paths(settings))} ({base})"]
    extra = extra_content_paths(settings)
    lines.append(f"  extra content: {', '.join(str(p) for p in extra)} (FHIR_PLUGIN_EXTRA_CONTENT)" if extra else
                 "  extra content: none (FHIR_PLUGIN_EXTRA_CONTENT adds files beside the content; "
                 "FHIR_PLUGIN_CONTENT replaces the bundled content)")
    return lines


def banner(base: str, workers: int, version: str, settings: Mapping[str, Any], front: str,
           startup: Startup) -> list[str]:
    default = settings["FHIR_PLUGIN_DEFAULT_VERSION"]
    counts: dict[str, int] = {}
    for rtype, *_ in startup.served:
        counts[rtype] = counts.get(rtype, 0) + 1
    if startup.cache_directory is None:
        cache = "  compiled-content cache: none"
    else:
        how = "read from it" if startup.from_cache else "content read, validated and compiled"
        cache = f"  compiled-content cache: {startup.cache_directory} ({how})"
    access = settings["FHIR_PLUGIN_ACCESS_LOG"]
    return [
        f"fhir-plugin {version} serving on {base} with {workers} worker(s)",
        f"  R4: {base}/r4", f"  R5: {base}/r5", f"  {default} (default): {base}/fhir",
        f"  front: {front}",
        f"  health: {base}/healthz (live), {base}/readyz (ready); metrics: {base}/metrics "
        f"({settings['FHIR_PLUGIN_METRICS']}); access log: {access}",
        *content_lines(settings),
        cache,
        *([f"  run-time loads: PostgreSQL {shown_conninfo(settings['FHIR_PLUGIN_LOAD_DATABASE'])}, shared by every "
           "replica"] if settings["FHIR_PLUGIN_LOAD_DATABASE"] else []),
        f"  loaded in {startup.seconds:.1f} s: {counts.get('CodeSystem', 0)} code system(s), "
        f"{counts.get('ValueSet', 0)} value set(s), {counts.get('ConceptMap', 0)} concept map(s)",
        *(f"    {line}" for line in inventory_lines(startup.served)),
    ]
