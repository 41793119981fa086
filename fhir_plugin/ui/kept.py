"""UI answers kept in the runtime's answer cache (runtime/answers.py), as FHIR answers are.

A concept page costs a $lookup, two $translate, a $validate-code per value set that may hold the
concept and a template; a type-ahead an $expand. Both depend only on the content, the path, the
query and the URL root the page's absolute links are made with (url_for(_external=True) reads the
Host header, or the server's name and port, the scheme and the script root), so the bytes
rendered once are given back to the same request: the key (`page_key`) is "ui", the registry's
token, those parts of the environ, the path and the raw query. A request with a forged Host gets
its own entry, never another client's: the coordinator's rule for UI pages in the FHIR views
(never kept, since their key has no Host) is kept here by putting the Host in the key. A run-time
load makes a new registry, with a new token, and clears the cache, so a page is never stale. In
the standalone app the answer cache's front door (web/front.py) gives a kept page before Flask,
with the same key; the answer carries the headers `secure_headers` would add.

Only pages that carry nothing of one client are kept: the pair checker's pages, which set and
echo a per-browser CSRF token, are not wrapped, and a response that sets a cookie is never kept
(the check below), so no client's token can reach another. UI answers share the answer cache's
bound (FHIR_PLUGIN_ANSWER_CACHE slots of 16 KiB) with the FHIR answers.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Mapping
from functools import wraps
from typing import Any

from flask import Response, current_app, request

from ..runtime.answers import Answer
from .safety import SECURE_HEADERS

View = Callable[..., Response]
OPERATION = "other"  # the label web/observe gives a UI page in the metrics and the access line


def page_key(environ: Mapping[str, Any], token: Hashable) -> Hashable:
    """Everything a kept UI answer's bytes depend on (the front door computes it too)."""
    return ("ui", token, environ.get("wsgi.url_scheme"), environ.get("HTTP_HOST"), environ.get("SERVER_NAME"),
            environ.get("SERVER_PORT"), environ.get("SCRIPT_NAME"), environ.get("PATH_INFO"),
            environ.get("QUERY_STRING"))


def kept(view: View) -> View:
    @wraps(view)
    def answer(*args: Any, **kwargs: Any) -> Response:
        state = current_app.extensions["fhir_plugin"]
        answers = state.runtime.answers
        if not answers.enabled:
            return view(*args, **kwargs)
        key = page_key(request.environ, state.service.registry.token)
        found = answers.get(key)
        if found is not None:
            return current_app.response_class(found.body, found.status, content_type=found.content_type)
        response = view(*args, **kwargs)
        if (response.status_code == 200 and not response.is_streamed and not response.direct_passthrough
                and "Set-Cookie" not in response.headers):
            answers.put(key, Answer(response.get_data(), 200, response.content_type or "", SECURE_HEADERS, OPERATION))
        return response
    return answer
