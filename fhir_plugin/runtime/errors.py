"""The errors of loading content into a running server (the admin endpoints and the load directory)."""

from __future__ import annotations

from ..terminology.errors import InvalidRequest, NotFound, TerminologyError


class Unauthorized(TerminologyError):
    """An admin endpoint called without the server's bearer token (or with another one)."""

    status = 401
    issue_code = "login"
    messages = {"ADMIN_UNAUTHORIZED": "This admin endpoint needs the header 'Authorization: Bearer "
                                      "<FHIR_PLUGIN_ADMIN_TOKEN>'"}


class Forbidden(TerminologyError):
    """An admin endpoint of a server that has none enabled: no state-changing endpoint is open by default."""

    status = 403
    issue_code = "forbidden"
    messages = {"ADMIN_DISABLED": (
        "Loading content into this server over HTTP is disabled: start it with FHIR_PLUGIN_ADMIN_TOKEN set to enable "
        "the admin endpoints")}


class InvalidLoadName(InvalidRequest):
    messages = {"LOADED_NAME_INVALID": (
        "'{name}' cannot name loaded content: use letters, digits, '.', '-' and '_' (at most 100), ending in .json, "
        ".json.gz or .tgz")}


class UnknownLoad(NotFound):
    messages = {"LOADED_NOT_FOUND": "No content named '{name}' was loaded into this server"}


class CsrfRejected(Forbidden):
    """The web UI's upload form sent without the token of the page it came from (ui/safety.py)."""

    messages = {"UI_CSRF_REJECTED": "This form was not sent from this server's page (its CSRF token is missing or "
                                    "wrong): reload the page and send it again"}


class LoadStoreUnavailable(TerminologyError):
    """A load or unload while the database of run-time loads (FHIR_PLUGIN_LOAD_DATABASE) cannot be
    used: not the client's fault, and worth trying again (503). What is served stays served."""

    status = 503
    issue_code = "transient"
    messages = {
        "LOAD_DATABASE_UNREACHABLE": (
            "The database of content loaded at run time ({where}) cannot be reached: nothing was loaded or unloaded, "
            "and this server keeps serving what it has; try again once the database is back (the server log says "
            "why it cannot be reached)"),
        "LOAD_DATABASE_SCHEMA": (
            "The database of content loaded at run time ({where}) holds schema version {found}, and this server "
            "needs version {expected}: nothing was loaded or unloaded, and this server keeps serving what it has; "
            "upgrade the servers that share this database to one version"),
    }
