"""The operator's endpoints: /healthz (liveness), /readyz (readiness) and /metrics (Prometheus).

They are not FHIR: plain JSON (health) and Prometheus text (metrics), answered without the engine,
the answer cache or the time budget, so that a probe costs almost nothing and says the truth even
when every worker is busy with slow terminology requests elsewhere.
"""

from __future__ import annotations

import hmac
import threading
import time

from flask import Blueprint, Response, current_app, request

from ..runtime.errors import Forbidden, Unauthorized
from ..runtime.metrics import metrics
from ..render.errors import NoSuchEndpoint
from .errors import register_error_handlers
from .views import PluginState

ops = Blueprint("fhir_plugin_ops", __name__)
register_error_handlers(ops)
ALIVE = b'{"status":"alive"}'
READY, NOT_READY = b'{"status":"ready"}', b'{"status":"not-ready"}'
SCRAPE_MEMO = 1.0  # seconds one worker answers scrapes with the same text: a flood of /metrics costs little
_memo: tuple[float, bytes, str] = (0.0, b"", "")
_memo_lock = threading.Lock()


def _plain(body: bytes, status: int = 200) -> Response:
    return Response(body, status, mimetype="application/json", headers={"Cache-Control": "no-store"})


@ops.get("/healthz")
def healthz() -> Response:
    """Liveness: the worker answers. Nothing else is looked at, so a restart is asked for only when
    the process itself is stuck."""
    return _plain(ALIVE)


@ops.get("/readyz")
def readyz() -> Response:
    """Readiness: the content is loaded and served (503 otherwise)."""
    state: PluginState = current_app.extensions["fhir_plugin"]
    return _plain(READY) if state.runtime.ready else _plain(NOT_READY, 503)


@ops.get("/metrics")
def metrics_view() -> Response:
    global _memo
    state: PluginState = current_app.extensions["fhir_plugin"]
    chosen = state.settings["FHIR_PLUGIN_METRICS"]
    if chosen == "off":
        raise NoSuchEndpoint("NO_SUCH_PATH", path=request.path)
    if chosen == "admin":
        token = state.settings["FHIR_PLUGIN_ADMIN_TOKEN"]
        if not token:
            raise Forbidden("ADMIN_DISABLED")
        scheme, _, given = request.headers.get("Authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not hmac.compare_digest(given.strip().encode(), token.encode()):
            raise Unauthorized("ADMIN_UNAUTHORIZED")
    now = time.monotonic()
    with _memo_lock:
        if now - _memo[0] >= SCRAPE_MEMO:
            counts = metrics()
            counts.note_caches(state.runtime.cache_stats().values(), now)
            _memo = (now, *counts.exposition())
        body, content_type = _memo[1], _memo[2]
    return Response(body, 200, content_type=content_type, headers={"Cache-Control": "no-store"})
