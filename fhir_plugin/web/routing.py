"""Routing so that every answer under the plugin is FHIR: no redirect, no HTML page from werkzeug.

- The plugin's rules take every HTTP method, even ones no route names (werkzeug would answer those
  itself: a 405 page of the host app), never ask for a trailing slash (`/r4/metadata/` is
  `/r4/metadata`, `/r4` is `/r4/`) and never merge slashes: werkzeug answers both with a 308. The
  views answer a method a route does not take with a 405 OperationOutcome and its `Allow` header,
  and OPTIONS with a 204 and `Allow`.
- Below the plugin's prefix a fallback blueprint answers what no FHIR rule does: the prefix itself
  with an informational OperationOutcome naming the FHIR bases, anything else with a 404
  OperationOutcome. It is mounted only where the plugin owns the paths: under a prefix, or at the
  root of the standalone app; a host app that mounts the plugin at its root keeps its own pages.
- A 404 whose path differs from an existing one only by case names that one (FHIR paths are
  case-sensitive; `/R4/codesystem/$LOOKUP` is a typing mistake, not a different request).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from flask import Blueprint, Flask, Response, current_app, request
from werkzeug.exceptions import HTTPException
from werkzeug.routing import BaseConverter

from ..render.errors import MethodNotAllowed, NoSuchEndpoint
from ..render.formats import FHIR_JSON, dumps
from ..terminology.outcome import information_outcome
from .errors import register_error_handlers

CONVERTER = "fhir_plugin_any"
_STATE = "fhir_plugin.routing"
# endpoints (the last part of the name) that only say nothing is there: a suggestion never names them
CATCH_ALLS = frozenset({"unknown", "unknown_below", "root"})


class AnyPath(BaseConverter):
    """Any rest of a path, slashes included, even leading ones (`/terminology//x`): the standard
    `path` converter refuses a leading slash, and werkzeug would then merge the slashes and redirect."""

    regex = ".+"
    part_isolating = False


@dataclass(frozen=True)
class Routes:
    prefix: str  # where the plugin is mounted ("" at the root)
    names: frozenset[str]  # the plugin's blueprints
    bases: tuple[tuple[str, str], ...]  # (path below the prefix, FHIR version) of each FHIR base
    segments: dict[str, str]  # lower case -> the spelling of every fixed path segment of the plugin's rules


def allow(methods: Iterable[str]) -> tuple[str, ...]:
    """The methods a route takes, as Allow names them: HEAD with GET, and OPTIONS always."""
    given = list(dict.fromkeys(methods))
    if "GET" in given and "HEAD" not in given:
        given.insert(given.index("GET") + 1, "HEAD")
    return (*given, "OPTIONS")


def options_response(allowed: Sequence[str]) -> Response:
    """OPTIONS: what the route takes, and nothing else."""
    response = Response(status=204)
    del response.headers["Content-Type"]
    response.headers["Allow"] = ", ".join(allowed)
    return response


def refuse_method(allowed: Sequence[str]) -> Response:
    """OPTIONS is answered; any other method not in `allowed` is a 405 with the Allow header."""
    if request.method == "OPTIONS":
        return options_response(allowed)
    raise MethodNotAllowed("METHOD_NOT_ALLOWED", method=request.method, path=request.path, allow=allowed)


# --- 404s that say where to go -----------------------------------------------------------------


def _routes() -> Routes | None:
    found = current_app.extensions.get(_STATE)
    return found if isinstance(found, Routes) else None


def suggestion(path: str) -> str | None:
    """The path of an endpoint that `path` names but for the case of its fixed segments, if any."""
    routes = _routes()
    if routes is None:
        return None
    candidate = "/".join(routes.segments.get(part.lower(), part) for part in path.split("/"))
    if candidate == path:
        return None
    adapter = current_app.create_url_adapter(request)
    try:
        rule, _ = adapter.match(candidate, method="GET", return_rule=True) if adapter else (None, None)
    except HTTPException:
        return None
    if rule is None:
        return None
    blueprint, _, endpoint = rule.endpoint.rpartition(".")
    if blueprint not in routes.names or endpoint in CATCH_ALLS:
        return None
    return candidate


def _bases(routes: Routes) -> str:
    named = [f"{routes.prefix}/{path} ({version})" for path, version in routes.bases]
    return ", ".join(named[:-1]) + f" and {named[-1]}" if len(named) > 1 else "".join(named)


def no_such_path(path: str, inside_base: bool = True) -> NoSuchEndpoint:
    """The 404 of a path nothing answers: naming the path it was probably meant to be, or, outside
    a FHIR base, the bases."""
    found = suggestion(path)
    if found is not None:
        return NoSuchEndpoint("NO_SUCH_PATH_CASE", path=path, suggestion=found)
    routes = _routes()
    if not inside_base and routes is not None and routes.bases:
        return NoSuchEndpoint("NO_SUCH_PATH_BASES", path=path, bases=_bases(routes))
    return NoSuchEndpoint("NO_SUCH_PATH", path=path)


def no_such_operation(operation: str, resource_type: str) -> NoSuchEndpoint:
    found = suggestion(request.path)
    if found is not None:
        return NoSuchEndpoint("NO_SUCH_OPERATION_CASE", operation=operation, resource_type=resource_type,
                              suggestion=found)
    return NoSuchEndpoint("NO_SUCH_OPERATION", operation=operation, resource_type=resource_type)


# --- the fallback below the prefix -------------------------------------------------------------

fallback = Blueprint("fhir_plugin_fallback", __name__)
register_error_handlers(fallback)
_ROOT_METHODS = allow(["GET"])


def root() -> Response:
    """The plugin's prefix (the standalone server's `/`): which FHIR bases are here."""
    if request.method not in ("GET", "HEAD"):
        return refuse_method(_ROOT_METHODS)
    routes = _routes()
    bases = _bases(routes) if routes is not None else ""
    text = f"fhir_plugin, a FHIR terminology server; its FHIR bases are {bases}"
    return Response(dumps(information_outcome(text), False), mimetype=FHIR_JSON)


def unknown_below(path: str) -> Response:
    raise no_such_path(request.path, inside_base=False)


_ANY = ["GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]  # OPTIONS named: Flask answers it itself otherwise
fallback.add_url_rule("/", "root", root, methods=_ANY, strict_slashes=False, merge_slashes=False)
fallback.add_url_rule(f"/<{CONVERTER}:path>", "unknown_below", unknown_below, methods=_ANY, strict_slashes=False,
                      merge_slashes=False)


def _segments(app: Flask, names: set[str]) -> dict[str, str]:
    found: dict[str, str] = {}
    for rule in app.url_map.iter_rules():
        if rule.endpoint.split(".", 1)[0] not in names:
            continue
        for part in rule.rule.split("/"):
            if part.startswith("<any("):  # <any(CodeSystem, ValueSet, ConceptMap):resource_type>
                for option in part[5:part.index(")")].split(","):
                    found[option.strip().lower()] = option.strip()
            elif part and "<" not in part:
                found[part.lower()] = part
    return found


def install(app: Flask, prefix: str, bases: Sequence[tuple[str, str]], names: Iterable[str], *,
            own_paths: bool) -> None:
    """After the plugin's blueprints (`names`) are registered on `app` under `prefix`: open their
    rules to every method, keep what the 404s need to know, and, if the plugin owns the paths below
    `prefix` (`own_paths`), mount the fallback there."""
    names = set(names)
    if own_paths:
        app.url_map.converters[CONVERTER] = AnyPath
        app.register_blueprint(fallback, url_prefix=prefix or None)
        names.add(fallback.name)
    for rule in app.url_map.iter_rules():
        if rule.endpoint.split(".", 1)[0] in names:
            # Every method reaches the view, which answers one the route does not take (405 with
            # Allow, OPTIONS): werkzeug, choosing by method, would answer with the host's own page.
            rule.methods = None
    app.extensions[_STATE] = Routes(prefix, frozenset(names), tuple(bases), _segments(app, names))
