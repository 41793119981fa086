"""$validate-code: making an issue of an answer from its catalogue message."""

from __future__ import annotations

from ..errors import answer_message
from ..models import Issue


def issue(severity: str, code: str, tx_type: str, message_id: str, /, *args: object, expression: str | None = None,
          in_message: bool = True, **fields: object) -> Issue:
    """An Issue whose text is the catalogue's `message_id` with `args` (or named `fields`)."""
    return Issue(severity, code, tx_type, answer_message(message_id, *args, **fields), message_id, expression,
                 in_message)
