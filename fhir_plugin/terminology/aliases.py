"""The other names a code system goes by, as content declares them: identifier -> canonical URL.

FHIR names a code system by its canonical URL (`CodeSystem.url`, what `Coding.system` carries);
HL7 v2 and CDA name it by an OID, and older content by a former URL. Two kinds of content say
which identifier stands for which URL:

- `CodeSystem.identifier`: an identifier whose `system` is `urn:ietf:rfc:3986` (its value is a
  URI) or whose value is a `urn:oid:` / `urn:uuid:` URI names the code system of `url`
  (ICD-10-CM declares `urn:oid:2.16.840.1.113883.6.90`). Other identifiers (a business
  identifier in some registry) are not names a Coding could carry, and a supplement names no
  code system to use.
- `NamingSystem` of kind `codesystem`: its `uri` uniqueId marked `preferred` (or its only `uri`
  one) is the canonical URL, and every other uniqueId is an alias of it: an `oid` as `urn:oid:`,
  a `uuid` as `urn:uuid:`, a `uri`, `v2csmnemonic` or `other` as written (`iri-stem` is a stem,
  not a name). Without a `uri`, the preferred (or only) `oid` is the canonical, as FHIR says of
  code systems that have no URL (`urn:oid:...`). `NamingSystem.url` (R5) names the NamingSystem
  itself, not the code system.

Pure functions of one resource: the registry indexes them (Registry.aliases) and the content layer
refuses content in which one identifier names two code systems (content/canonicals.py).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

URI_IDENTIFIER_SYSTEM = "urn:ietf:rfc:3986"
_URN_PREFIXES = ("urn:oid:", "urn:uuid:")
_PREFIX_OF_TYPE = {"oid": "urn:oid:", "uuid": "urn:uuid:"}
_NAME_TYPES = ("oid", "uuid", "uri", "v2csmnemonic", "other")


class AmbiguousNamingSystem(ValueError):
    """A NamingSystem of kind codesystem with several `uri` uniqueIds and none preferred: which one
    is the code system's URL cannot be told. The content layer refuses it (CONTENT_NAMINGSYSTEM_AMBIGUOUS)."""

    def __init__(self, uris: list[str]):
        super().__init__(", ".join(uris))
        self.uris = uris


def _dicts(value: object) -> list[dict[str, Any]]:
    return [item for item in value if isinstance(item, dict)] if isinstance(value, list) else []


def _named(unique_id: dict[str, Any]) -> str | None:
    """The name a uniqueId stands for, as a Coding.system would carry it (None: not a name)."""
    value, kind = unique_id.get("value"), unique_id.get("type")
    if not isinstance(value, str) or not value or kind not in _NAME_TYPES:
        return None
    prefix = _PREFIX_OF_TYPE.get(str(kind))
    return value if prefix is None or value.startswith(prefix) else prefix + value


def _chosen(unique_ids: list[dict[str, Any]], kind: str) -> str | None | list[str]:
    """The preferred uniqueId of `kind` (else the only one); the candidates when several and none preferred."""
    of_kind = [u for u in unique_ids if u.get("type") == kind and _named(u)]
    preferred = [u for u in of_kind if u.get("preferred") is True]
    if preferred or len(of_kind) == 1:
        return _named((preferred or of_kind)[0])
    return [name for u in of_kind if (name := _named(u))] or None


def naming_system_canonical(resource: dict[str, Any]) -> str | None:
    """The canonical URL a NamingSystem of kind codesystem gives its code system (None for other
    kinds, or when it has neither a uri nor an oid). AmbiguousNamingSystem when it has several
    uris and none is preferred."""
    if resource.get("kind") != "codesystem":
        return None
    unique_ids = _dicts(resource.get("uniqueId"))
    for kind in ("uri", "oid"):
        chosen = _chosen(unique_ids, kind)
        if isinstance(chosen, list):
            if kind == "uri":
                raise AmbiguousNamingSystem(chosen)
            return None  # several OIDs, no URI: nothing says which is the code system's name
        if chosen is not None:
            return chosen
    return None


def declared_aliases(resource: dict[str, Any]) -> list[tuple[str, str]]:
    """(alias, canonical URL) for each other name the resource gives a code system, in order and
    once each; an alias equal to its canonical is not one. Any other resource declares none."""
    rtype = resource.get("resourceType")
    found: list[tuple[str, str]] = []
    if rtype == "CodeSystem":
        url = resource.get("url")
        if not isinstance(url, str) or resource.get("content") == "supplement":
            return []
        for identifier in _dicts(resource.get("identifier")):
            value = identifier.get("value")
            if isinstance(value, str) and value and (
                    identifier.get("system") == URI_IDENTIFIER_SYSTEM or value.startswith(_URN_PREFIXES)):
                found.append((value, url))
    elif rtype == "NamingSystem":
        try:
            canonical = naming_system_canonical(resource)
        except AmbiguousNamingSystem:
            return []  # refused at load; a registry given one anyway maps nothing from it
        if canonical is None:
            return []
        found = [(name, canonical) for u in _dicts(resource.get("uniqueId")) if (name := _named(u))]
    return list(dict.fromkeys((alias, canonical) for alias, canonical in found if alias != canonical))


def alias_index(resources: Iterable[dict[str, Any]]) -> tuple[dict[str, str], set[str]]:
    """(alias -> canonical, the aliases that name two different canonicals) of `resources`."""
    aliases: dict[str, str] = {}
    ambiguous: set[str] = set()
    for resource in resources:
        for alias, canonical in declared_aliases(resource):
            if aliases.setdefault(alias, canonical) != canonical:
                ambiguous.add(alias)
    for alias in ambiguous:
        del aliases[alias]
    return aliases, ambiguous
