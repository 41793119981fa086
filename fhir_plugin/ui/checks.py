"""The pair checker (one pair, a GET form) and the check of a file of pairs (an upload: POST, with
the CSRF token, within FHIR_PLUGIN_UI_MAX_UPLOAD_BYTES and the time budget). Both are pairing
$translate requests (terminology.pairs), as the command line's `check-pairs` sends them."""

from __future__ import annotations

from flask import Response, current_app, request

from ..render.errors import RequestTooLarge
from ..terminology.budget import time_budget
from ..terminology.errors import InvalidRequest
from ..terminology.pairs import CPT, ICD_10_CM, Pair, check_pairs, classify, pair_request, read_pairs, report_csv, summary
from ..runtime.errors import CsrfRejected
from .pages import fhir_url, page, service, ui
from .safety import CSRF_FIELD, csrf_ok, csrf_token, set_csrf_cookie

_MAX_CODE = 100


def _settings() -> dict[str, object]:
    found: dict[str, object] = current_app.extensions["fhir_plugin"].settings
    return found


@ui.get("/check")
def check() -> Response:
    given = {name: request.args.get(name, "").strip()[:_MAX_CODE] for name in ("source", "target")}
    systems = {"source_system": request.args.get("source_system", CPT)[:_MAX_CODE * 4] or CPT,
               "target_system": request.args.get("target_system", ICD_10_CM)[:_MAX_CODE * 4] or ICD_10_CM}
    report, fhir_request = None, fhir_url("translate", sourceSystem=CPT, sourceCode="97116", targetSystem=ICD_10_CM,
                                          targetCode="M62.81")
    if given["source"] and given["target"]:
        pair = Pair(0, systems["source_system"], given["source"], systems["target_system"], given["target"])
        result = service().translate(pair_request(pair))
        report = (classify(pair, result), result)
        fhir_request = fhir_url("translate", sourceSystem=pair.source_system, sourceCode=pair.source,
                                targetSystem=pair.target_system, targetCode=pair.target)
    return page("check.html", given=given, systems=systems, report=report, fhir_request=fhir_request)


def _upload_page(status: int = 200, **context: object) -> Response:
    token = csrf_token(request)
    response = page("check_pairs.html", status, csrf_field=CSRF_FIELD, csrf_token=token,
                    limit=_settings()["FHIR_PLUGIN_UI_MAX_UPLOAD_BYTES"], fhir_request=None, **context)
    set_csrf_cookie(response, token, request.script_root + "/")
    return response


@ui.get("/check-pairs")
def check_pairs_form() -> Response:
    return _upload_page()


@ui.post("/check-pairs")
def check_pairs_upload() -> Response:
    limit = int(str(_settings()["FHIR_PLUGIN_UI_MAX_UPLOAD_BYTES"]))
    if request.content_length is not None and request.content_length > limit + 64 * 1024:  # room for the form
        raise RequestTooLarge("BODY_TOO_LARGE", limit=str(limit))
    if not csrf_ok(request):
        raise CsrfRejected("UI_CSRF_REJECTED")
    upload = request.files.get("file")
    raw = upload.stream.read(limit + 1) if upload is not None else b""
    if len(raw) > limit:
        raise RequestTooLarge("BODY_TOO_LARGE", limit=str(limit))
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        raise InvalidRequest("PAIRS_FILE_INVALID", line=str(raw[:error.start].count(b"\n") + 1),
                             problem="not UTF-8 text") from None
    with time_budget(int(str(_settings()["FHIR_PLUGIN_TIME_BUDGET_MS"]))):
        reports = list(check_pairs(service(), read_pairs(text)))
    if request.form.get("output") == "csv":
        response = Response(report_csv(reports), mimetype="text/csv")
        response.headers["Content-Disposition"] = 'attachment; filename="pairs-report.csv"'
        return response
    return _upload_page(reports=reports, summary=summary(reports))
