"""The error of loading content: files, Bundles, FHIR packages and licensed CPT files."""

from __future__ import annotations

from ..terminology.errors import TerminologyError, TooCostly


class InvalidContent(TerminologyError):
    """Content that cannot be loaded: not JSON, not valid FHIR, or conflicting with what is loaded.
    `origin` (the first field of most messages) names the file, the archive member or the Bundle
    entry."""

    status = 422
    issue_code = "invalid"
    messages = {
        "CONTENT_NOT_JSON": "{origin}: not valid JSON: {reason}",
        "CONTENT_INVALID": "{origin}: {resource} is not valid FHIR {version}: {problem}",
        "CONTENT_NOT_FOUND": "{path}: no such file or directory",
        "CONTENT_NO_URL": "{origin}: {resource} has no url, so no request could ever name it",
        "CONTENT_UNSUPPORTED_TYPE": "{origin}: cannot load a {resource_type}; expected CodeSystem, ValueSet, ConceptMap, "
                                    "NamingSystem or Bundle",
        "CONTENT_DUPLICATE_CANONICAL": "{resource_type} '{url}' version '{version}' is loaded twice with different "
                                       "content: in {first} and in {second}",
        "CONTENT_DUPLICATE_ID": "{resource_type}/{id} is loaded twice, as two different resources: in {first} and in "
                                "{second}",
        "CONTENT_DUPLICATE_IDENTIFIER": "The identifier '{identifier}' names two code systems: '{canonical}' in {second} "
                                        "and '{other}' in {first}",
        "CONTENT_NAMINGSYSTEM_AMBIGUOUS": "{origin}: {resource} names a code system by several uri identifiers ({uris}) "
                                          "and marks none preferred, so its URL cannot be told",
        "CONTENT_NOT_FHIR": "{origin}: not a FHIR resource: {problem}",
        "CONTENT_TOO_LARGE": "{origin}: refused: it expands to more than {limit} bytes (the limit set by {setting})",
        "CONTENT_TOO_DEEP": "{origin}: refused: its JSON nests arrays and objects more than {limit} levels deep (the "
                            "limit set by FHIR_PLUGIN_MAX_JSON_DEPTH)",
        "BUNDLE_TYPE_REFUSED": "{origin}: cannot load a Bundle of type '{type}'; expected collection, batch or "
                               "transaction",
        "BUNDLE_ENTRY_REFUSED": "{origin}: cannot load this Bundle entry: {problem}",
        "PACKAGE_INVALID": "{origin}: not a usable FHIR package: {problem}",
        "PACKAGE_MEMBER_REFUSED": "{origin}: refused the archive member '{member}': {problem}",
        # importing licensed CPT files (fhir_plugin.content.cpt)
        "CPT_FILE_INVALID": "{file}, line {line}: {problem}",
        "CPT_FILE_EMPTY": "{file}: no CPT codes in this file",
    }


class PackageUnavailable(InvalidContent):
    """A FHIR package that cannot be installed or served: not in any registry (or not that version),
    no registry answered, its archive fails its checksum, or (serving) it is not in the package cache.
    Raised by `fhir-plugin install` and at start-up, never by a request."""

    issue_code = "not-found"
    messages = {
        "PACKAGE_SPEC_INVALID": "'{spec}' is not a package: give NAME or NAME#VERSION (e.g. hl7.terminology.r5#7.0.1)",
        "PACKAGE_NOT_FOUND": "{package}: no package registry has this package ({reasons})",
        "PACKAGE_VERSION_NOT_FOUND": "{package}: no package registry has this version ({reasons})",
        "PACKAGE_REGISTRIES_FAILED": "{package}: no package registry answered ({reasons})",
        "PACKAGE_DOWNLOAD_FAILED": "{package}: the download of {url} failed: {problem}",
        "PACKAGE_INTEGRITY_FAILED": "{package}: the archive from {url} fails its integrity check ({algorithm} is "
                                    "{actual}, the registry says {expected}); nothing was installed",
        "PACKAGE_CACHE_FAILED": "{cache}: cannot write to the package cache: {problem}",
        "PACKAGE_NOT_INSTALLED": "{package}{needed} is not in the package cache {cache}: run `fhir-plugin install` "
                                 "(or `make install`), or change FHIR_PLUGIN_PACKAGES",
    }


class LoadTooCostly(TooCostly):
    """A load into a running server larger than one load may be (FHIR_PLUGIN_MAX_LOAD_BYTES,
    _RESOURCES, _CONCEPTS): refused before anything is validated, since validating costs time in
    proportion to these, inside a request."""

    messages = {
        "LOAD_TOO_COSTLY": "{origin}: refused before validation: it holds at least {count} {unit}, and one load may hold "
                           "at most {limit} (the limit set by {setting})",
        "LOAD_TOO_LARGE": "{origin}: refused before validation: it is, or expands to, more than {limit} bytes, the most "
                          "one load may hold (the limit set by {setting})",
    }
