"""The answer to a batch or transaction Bundle (FHIR http.html#transaction), written as bytes.

Each entry's answer arrives as the JSON bytes its request would have been answered with alone (often
straight from the answer cache), and is spliced into the response Bundle as it is: nothing is parsed
again. The Bundle has the same shape in R4 and R5.

An entry that failed carries its OperationOutcome twice: in `response.outcome`, where FHIR's batch
rules put an entry's error, and as the entry's `resource`, which is what the same request alone
would have answered and where the HL7 validator's batch client reads it.
"""

from __future__ import annotations

from http import HTTPStatus

import orjson

BATCH_RESPONSE, TRANSACTION_RESPONSE = "batch-response", "transaction-response"


def status_line(status: int) -> str:
    """`404` -> `404 Not Found`: Bundle.entry.response.status, the status line of the entry's answer."""
    try:
        return f"{status} {HTTPStatus(status).phrase}"
    except ValueError:
        return str(status)


def entry(status: int, body: bytes | None) -> bytes:
    """One response entry: the answer's resource (JSON bytes, None for none, as for HEAD) and its
    status; for a 4xx or 5xx the resource, an OperationOutcome, is also the entry's outcome."""
    response = b'{"status":' + orjson.dumps(status_line(status))
    if body is not None and status >= 400:
        response += b',"outcome":' + body
    response += b"}"
    if body is None:
        return b'{"response":' + response + b"}"
    return b'{"resource":' + body + b',"response":' + response + b"}"


def bundle(kind: str, entries: list[bytes]) -> bytes:
    """The response Bundle (`batch-response` or `transaction-response`) of `entries`, in their order."""
    head = b'{"resourceType":"Bundle","type":' + orjson.dumps(kind)
    if not entries:
        return head + b"}"
    return head + b',"entry":[' + b",".join(entries) + b"]}"
