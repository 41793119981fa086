"""JSON that keeps numbers as they were written.

The official runner compares numbers by their text (`5` is not `5.0`, `0.450` is not `0.45`), and
sends the test files' numbers as written. Python's json turns `5.0` into a float and back into
`5.0`, but `0.450` into `0.45`; so every test file and every response is read with numbers as
`Number` (their text), and written back by `dumps` below, which emits that text unchanged.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class Number:
    """A JSON number, as its text. Not a str, so that a number never compares equal to a string."""

    text: str

    def __str__(self) -> str:
        return self.text


def loads(data: bytes | str) -> Any:
    """Parse JSON (a UTF-8 BOM is allowed), numbers as `Number`."""
    if isinstance(data, bytes):
        data = data.decode("utf-8-sig")
    else:
        data = data.removeprefix("\ufeff")
    return json.loads(data, parse_int=Number, parse_float=Number, parse_constant=_no_constant)


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def load_file(path: Path) -> Any:
    return loads(Path(path).read_bytes())


def dumps(value: Any, indent: int | None = None) -> str:
    """JSON text for `value`; `Number`s are written as their text. Compact unless `indent`."""
    parts: list[str] = []
    _write(value, parts, indent, 0)
    return "".join(parts)


def _write(value: Any, out: list[str], indent: int | None, level: int) -> None:
    if isinstance(value, Number):
        out.append(value.text)
    elif isinstance(value, dict):
        if not value:
            out.append("{}")
            return
        out.append("{")
        for i, (key, item) in enumerate(value.items()):
            out.append(_separator(i, indent, level + 1))
            out.append(json.dumps(key, ensure_ascii=False) + (": " if indent is not None else ":"))
            _write(item, out, indent, level + 1)
        out.append(_closing(indent, level) + "}")
    elif isinstance(value, list):
        if not value:
            out.append("[]")
            return
        out.append("[")
        for i, item in enumerate(value):
            out.append(_separator(i, indent, level + 1))
            _write(item, out, indent, level + 1)
        out.append(_closing(indent, level) + "]")
    else:  # str, bool, None, and plain int/float built by code
        out.append(json.dumps(value, ensure_ascii=False))


def _separator(index: int, indent: int | None, level: int) -> str:
    comma = "," if index else ""
    return comma if indent is None else comma + "\n" + " " * (indent * level)


def _closing(indent: int | None, level: int) -> str:
    return "" if indent is None else "\n" + " " * (indent * level)
