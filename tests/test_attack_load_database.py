"""Attacks on a server whose run-time loads are kept in PostgreSQL (FHIR_PLUGIN_LOAD_DATABASE), here
one that cannot be reached (nothing listens on port 1; no PostgreSQL needed): an anonymous client
cannot make the server reach for the database (each try would wait up to its connect timeout, and
log), whatever it sends to the admin endpoints or the FHIR endpoints; the log says once that the
database is gone, not once per request."""

from __future__ import annotations

import logging
import threading

import pytest

from fhir_plugin import create_app

pytest.importorskip("psycopg", reason="psycopg is not installed: pip install fhir-plugin[postgres]")

from fhir_plugin.runtime.pgstore import DatabaseStore  # noqa: E402

CONNINFO = "host=127.0.0.1 port=1 dbname=loads user=fhir connect_timeout=2"


def test_anonymous_clients_never_make_the_server_reach_the_database(service, monkeypatch, caplog):
    tries: list[str] = []
    real = DatabaseStore._connect

    def counted(self, *args, **kwargs):
        tries.append(threading.current_thread().name)
        return real(self, *args, **kwargs)

    monkeypatch.setattr(DatabaseStore, "_connect", counted)
    with caplog.at_level(logging.INFO, logger="fhir_plugin.runtime.pgstore"):
        app = create_app({"FHIR_PLUGIN_ADMIN_TOKEN": "t0ken", "FHIR_PLUGIN_LOAD_DATABASE": CONNINFO,
                          "FHIR_PLUGIN_LOAD_POLL": 60}, service=service)
        client = app.test_client()
        try:
            client.get("/healthz")
            requests_tries = [name for name in tries if name != "fhir-plugin-load-listener"]
            assert requests_tries == ["MainThread"]  # the start's one try (build), before any request
            hostile = [("POST", "/admin/content?name=x.json", {}), ("POST", "/admin/content", {}),
                       ("DELETE", "/admin/content/x.json", {}), ("GET", "/admin/content", {}),
                       ("POST", "/admin/content", {"Authorization": "Bearer wrong"}),
                       ("DELETE", "/admin/content/x.json", {"Authorization": "Basic dDBrZW4="}),
                       ("GET", "/r4/CodeSystem/$lookup?system=http://example.org/x&code=1", {}),
                       ("GET", "/r4/metadata", {})]
            statuses = {}
            for _ in range(50):
                for method, path, headers in hostile:
                    response = client.open(path, method=method, headers=headers, data=b'{"resourceType":"Bundle"}')
                    statuses[(method, path, headers.get("Authorization"))] = response.status_code
            assert set(statuses.values()) == {401, 404, 200}
            assert [name for name in tries if name != "fhir-plugin-load-listener"] == ["MainThread"]
            gone = [r.getMessage() for r in caplog.records if "cannot be used" in r.getMessage()]
            assert len(gone) == 1, gone  # the start's try and the listener's share one line (one reason)
        finally:
            app.extensions["fhir_plugin"].runtime.store.close()
