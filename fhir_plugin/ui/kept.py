"""UI answers kept in the runtime's answer cache (runtime/answers.py), as FHIR answers are.

A concept page costs a $lookup, two $translate, a $validate-code per value set that may hold the
concept and a template; a type-ahead an $expand. Both depend only on the content, the path, the
query and the URL root the page's absolute links are made with (url_for(_external=True) reads the
Host header, the scheme and the script root), so the bytes rendered once are given back to the
same request: the key is ("ui", the registry's token, root URL, path, raw query). A run-time load
makes a new registry, with a new token, and clears the cache, so a page is never stale.

Only pages that carry nothing of one client are kept: the pair checker's pages, which set and
echo a per-browser CSRF token, are not wrapped, and a response that sets a cookie is never kept
(the check below), so no client's token can reach another. UI answers share the answer cache's
bound (FHIR_PLUGIN_ANSWER_CACHE slots of 16 KiB) with the FHIR answers.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any

from flask import Response, current_app, request

from ..runtime.answers import Answer

View = Callable[..., Response]


def kept(view: View) -> View:
    @wraps(view)
    def answer(*args: Any, **kwargs: Any) -> Response:
        state = current_app.extensions["fhir_plugin"]
        answers = state.runtime.answers
        if not answers.enabled:
            return view(*args, **kwargs)
        environ = request.environ
        key = ("ui", state.service.registry.token, request.root_url, environ.get("PATH_INFO", ""),
               environ.get("QUERY_STRING", ""))
        found = answers.get(key)
        if found is not None:
            return current_app.response_class(found.body, found.status, content_type=found.content_type)
        response = view(*args, **kwargs)
        if (response.status_code == 200 and not response.is_streamed and not response.direct_passthrough
                and "Set-Cookie" not in response.headers):
            answers.put(key, Answer(response.get_data(), 200, response.content_type or ""))
        return response
    return answer
