"""Language lists: `displayLanguage` and the HTTP Accept-Language header (RFC 9110, section 12.5.4).

One parser for every operation. A list is ranges with optional weights: `de-CH, de;q=0.8, *;q=0`.
`ranges` keeps every range in the order given, `q=0` included: `$expand` reads `*;q=0` as "no
display in any other language". `preferred` is what a lookup tries, best first: weight 0 means
"not acceptable", so those ranges are left out, and ties keep the order given.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class LanguageRange:
    tag: str  # lower case; "*" is any language
    quality: float = 1.0


def ranges(header: str) -> list[LanguageRange]:
    """Every range of the list, in the order given. A malformed weight counts as 1, rather than
    failing the request; spaces around `=` are tolerated."""
    found = []
    for item in header.split(","):
        tag, *params = [part.strip() for part in item.split(";")]
        quality = 1.0
        for param in params:
            key, _, value = param.replace(" ", "").partition("=")
            if key == "q":
                try:
                    quality = float(value)
                except ValueError:
                    pass
        if tag:
            found.append(LanguageRange(tag.lower(), quality))
    return found


def preferred(header: str) -> list[str]:
    """The acceptable tags, best first (by weight, then in the order given)."""
    ranked = sorted((-r.quality, position, r.tag) for position, r in enumerate(ranges(header)) if r.quality > 0)
    return [tag for _, _, tag in ranked]


def same_language(wanted: str, have: str) -> bool:
    """'de' matches 'de-CH', and 'de-AT' falls back to plain 'de'."""
    return wanted == have or wanted.split("-")[0] == have or have.split("-")[0] == wanted
