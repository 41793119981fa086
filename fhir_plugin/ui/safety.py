"""What every UI answer carries: a restrictive Content-Security-Policy and friends, and the CSRF
check of the one POST form (the pairs upload), by double submit: a random token in a SameSite
cookie that the form must echo."""

from __future__ import annotations

import hmac
import secrets

from flask import Request, Response

CSP = ("default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; "
       "form-action 'self'; base-uri 'none'; frame-ancestors 'none'")
CSRF_COOKIE = "fhir_plugin_csrf"
CSRF_FIELD = "csrf_token"


SECURE_HEADERS = (("Content-Security-Policy", CSP), ("X-Content-Type-Options", "nosniff"),
                  ("Referrer-Policy", "same-origin"), ("X-Frame-Options", "DENY"))


def secure_headers(response: Response) -> Response:
    for name, value in SECURE_HEADERS:
        response.headers[name] = value
    return response


def csrf_token(request: Request) -> str:
    """The token of this browser (its cookie's), or a new one that the page then sets."""
    given = request.cookies.get(CSRF_COOKIE, "")
    return given if len(given) == 43 else secrets.token_urlsafe(32)


def set_csrf_cookie(response: Response, token: str, path: str) -> None:
    response.set_cookie(CSRF_COOKIE, token, httponly=True, samesite="Strict", path=path)


def csrf_ok(request: Request) -> bool:
    cookie, field = request.cookies.get(CSRF_COOKIE, ""), request.form.get(CSRF_FIELD, "")
    return bool(cookie) and hmac.compare_digest(cookie.encode(), field.encode())
