"""A package registry for tests: a real HTTP server (http.server, in a thread) that speaks the npm
registry protocol the FHIR package registries speak, serving packages the test builds.

    with PackageRegistry() as registry:
        registry.publish("example.a", "1.0.0", {"CodeSystem-a.json": {...}})
        registry.url   # http://127.0.0.1:<port>; GET /example.a lists the versions, with dist.tarball

`requests` records every path asked for, so that a test can tell that nothing was asked. A
registry can be made to fail: `answer = "garbage"` (200 with HTML), `"error"` (HTTP 503),
`"silent"` (the connection is accepted and nothing is ever sent), `"endless"` (every answer is a
stream of bytes that never ends); `document` replaces every package document with those bytes.
"""

from __future__ import annotations

import base64
import hashlib
import json
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import unquote

from tgz import package_bytes


@dataclass
class Published:
    manifest: dict
    archive: bytes
    served: bytes  # what the tarball URL answers: the archive, or a tampered copy
    dist: dict


@dataclass
class PackageRegistry:
    answer: str = "ok"  # ok, garbage, error, silent
    packages: dict[str, dict[str, Published]] = field(default_factory=dict)
    latest: dict[str, str] = field(default_factory=dict)
    requests: list[str] = field(default_factory=list)
    url: str = ""
    document_bytes: bytes | None = None

    def publish(self, name: str, version: str, resources: dict[str, object], dependencies: dict[str, str] | None = None,
                checksum: str = "integrity", tamper: bool = False, archive: bytes | None = None,
                fhir_version: str = "5.0.0") -> bytes:
        """Serve `name`#`version`; `checksum`: integrity (SHA-512 SRI), shasum (SHA-1), both or none;
        `tamper`: the tarball URL serves other bytes than the checksum says; `archive`: these bytes."""
        data = archive if archive is not None else package_bytes(name, version, resources, dependencies, fhir_version)
        dist = {"tarball": f"{self.url}/-/{name}-{version}.tgz"}
        if checksum in ("integrity", "both"):
            dist["integrity"] = "sha512-" + base64.b64encode(hashlib.sha512(data).digest()).decode()
        if checksum in ("shasum", "both"):
            dist["shasum"] = hashlib.sha1(data).hexdigest()
        served = data[:-1] + bytes([data[-1] ^ 1]) if tamper else data
        manifest = {"name": name, "version": version, "dependencies": dependencies or {}}
        self.packages.setdefault(name, {})[version] = Published(manifest, data, served, dist)
        self.latest[name] = version
        return data

    def document(self, name: str) -> dict:
        versions = {v: {**p.manifest, "dist": p.dist} for v, p in self.packages[name].items()}
        return {"_id": name, "name": name, "dist-tags": {"latest": self.latest[name]}, "versions": versions}

    def __enter__(self) -> PackageRegistry:
        registry = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                pass

            def do_GET(self) -> None:  # noqa: N802 - http.server's name
                registry.requests.append(self.path)
                if registry.answer == "silent":
                    time.sleep(5)
                    return
                if registry.answer == "error":
                    return self._send(503, b"down for maintenance", "text/plain")
                if registry.answer == "endless":
                    self.send_response(200)
                    self.send_header("Content-Type", "application/octet-stream")
                    self.end_headers()
                    try:
                        while True:
                            self.wfile.write(b"\0" * 65536)
                    except OSError:  # the client gave up
                        return
                if registry.answer == "garbage":
                    return self._send(200, b"<html><body>Welcome to our registry!</body></html>", "text/html")
                name = unquote(self.path.strip("/"))  # a scoped name comes as @scope%2Fname
                if name.startswith("-/"):
                    for versions in registry.packages.values():
                        for published in versions.values():
                            if published.dist["tarball"].endswith(self.path):
                                return self._send(200, published.served, "application/octet-stream")
                    return self._send(404, b"{}", "application/json")
                if registry.document_bytes is not None:
                    return self._send(200, registry.document_bytes, "application/json")
                if name not in registry.packages:
                    return self._send(404, b'{"error": "not found"}', "application/json")
                self._send(200, json.dumps(registry.document(name)).encode(), "application/json")

            def _send(self, status: int, body: bytes, content_type: str) -> None:
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()
