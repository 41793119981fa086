"""Hostile package registries and archives against `fhir-plugin install`: what a registry sends is
bounded while it arrives (a package document, an archive, what the archive expands to, how many
members it has), a failure is one line, and nothing is left in the package cache.

A registry is chosen by the operator, but it is reached over the network and its archives come from
whoever published them: neither is trusted.
"""

from __future__ import annotations

import gzip
import io
import tarfile

import pytest
from package_registry import PackageRegistry
from tgz import member, tgz_bytes

from fhir_plugin.content import package_install
from fhir_plugin.content.errors import InvalidContent, PackageUnavailable
from fhir_plugin.content.limits import Limits
from fhir_plugin.content.package_cache import PackageCache, PackageSpec
from fhir_plugin.content.package_install import Registries, install

MANIFEST = member("package/package.json", {"name": "example.a", "version": "1.0.0", "fhirVersions": ["5.0.0"]})


@pytest.fixture
def cache(tmp_path):
    return tmp_path / "packages"


def attempt(registry: PackageRegistry, cache, limits: Limits | None = None) -> Exception:
    with pytest.raises((PackageUnavailable, InvalidContent)) as refused:
        install([PackageSpec.parse("example.a#1.0.0")], PackageCache(cache), Registries([registry.url]),
                limits=limits or Limits())
    assert "\n" not in refused.value.text  # one line
    assert not cache.exists() or list(cache.iterdir()) == []
    return refused.value


def test_a_package_document_larger_than_the_bound(cache, monkeypatch):
    monkeypatch.setattr(package_install, "MAX_DOCUMENT_BYTES", 100_000)
    with PackageRegistry(document_bytes=b'{"versions": {"' + b"x" * 1_000_000 + b'": {}}}') as registry:
        error = attempt(registry, cache)
    assert error.text == (f"example.a#1.0.0: no package registry answered ({registry.url}: its answer is larger than "
                          "100000 bytes)")


def test_an_archive_that_never_ends(cache):
    with PackageRegistry() as registry:
        registry.publish("example.a", "1.0.0", {}, checksum="none")
        registry.answer = "endless"
        registry.document_bytes = None
        with PackageRegistry() as describing:  # the document from one, the endless tarball from the other
            describing.publish("example.a", "1.0.0", {}, checksum="none")
            describing.packages["example.a"]["1.0.0"].dist["tarball"] = f"{registry.url}/-/example.a-1.0.0.tgz"
            error = attempt(describing, cache, Limits(max_package_bytes=2_000_000))
    assert error.text == (f"example.a#1.0.0: the download of {registry.url}/-/example.a-1.0.0.tgz failed: larger than "
                          "2000000 bytes (the limit set by FHIR_PLUGIN_MAX_PACKAGE_BYTES)")


def _bomb(size: int) -> bytes:
    """A package whose one member is `size` zero bytes: a few kilobytes of gzip."""
    buffer = io.BytesIO()
    with gzip.GzipFile(fileobj=buffer, mode="wb") as compressed:
        with tarfile.open(fileobj=compressed, mode="w|", format=tarfile.PAX_FORMAT) as tar:
            info, data = MANIFEST
            tar.addfile(info, io.BytesIO(data))
            zeros = tarfile.TarInfo("package/CodeSystem-bomb.json")
            zeros.size = size

            class Zeros(io.RawIOBase):
                left = size

                def readable(self):
                    return True

                def readinto(self, b):
                    n = min(len(b), self.left)
                    b[:n] = bytes(n)
                    self.left -= n
                    return n

            tar.addfile(zeros, io.BufferedReader(Zeros()))
    return buffer.getvalue()


def test_a_decompression_bomb_is_refused_while_it_expands(cache):
    archive = _bomb(300_000_000)
    assert len(archive) < 1_000_000
    with PackageRegistry() as registry:
        registry.publish("example.a", "1.0.0", {}, archive=archive)
        error = attempt(registry, cache, Limits(max_package_bytes=50_000_000, max_member_bytes=10_000_000))
    assert error.message_id == "CONTENT_TOO_LARGE"
    assert error.text == ("example.a#1.0.0 (package/CodeSystem-bomb.json): refused: it expands to more than 10000000 "
                          "bytes (the limit set by FHIR_PLUGIN_MAX_MEMBER_BYTES)")


def test_an_archive_of_too_many_members(cache):
    archive = tgz_bytes([MANIFEST, *(member(f"package/x{n}.json", b"{}") for n in range(300))])
    with PackageRegistry() as registry:
        registry.publish("example.a", "1.0.0", {}, archive=archive)
        error = attempt(registry, cache, Limits(max_members=100))
    assert error.text == "example.a#1.0.0: not a usable FHIR package: more than 100 members"


def test_a_registry_that_is_not_a_registry(cache):
    with PackageRegistry(document_bytes=b'{"versions": ["1.0.0"]}') as registry:
        error = attempt(registry, cache)
    assert error.text == (f"example.a#1.0.0: no package registry answered ({registry.url}: its answer is not a package "
                          "document (no versions))")


def test_a_tarball_url_that_is_not_http(cache):
    with PackageRegistry(document_bytes=b'{"versions": {"1.0.0": {"dist": {"tarball": "file:///etc/passwd"}}}}') as registry:
        error = attempt(registry, cache)
    assert error.text == (f"example.a#1.0.0: no package registry answered ({registry.url}: its answer gives "
                          "example.a#1.0.0 no tarball URL)")
