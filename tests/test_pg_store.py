"""Content loaded at run time kept in PostgreSQL (FHIR_PLUGIN_LOAD_DATABASE), in-process: two apps
sharing one database (as two replicas would), against a throwaway cluster this module starts
(tests/postgres.py; skipped without PostgreSQL: apt-get install postgresql). The faults: a
database that cannot be reached at start or at a load, a wrong schema version, a database made
again. tests/test_pg_replicas.py runs real servers behind nginx."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Iterator

import pytest

from fhir_plugin import create_app
from fhir_plugin.runtime.pgschema import LOCK, SCHEMA_VERSION
from fhir_plugin.runtime.pgstore import DatabaseStore
from live_server import free_port
from postgres import Cluster, throwaway_cluster

psycopg = pytest.importorskip("psycopg", reason="psycopg is not installed: pip install fhir-plugin[postgres]")

TOKEN = "s3cret-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
DEMO = "http://example.org/fhir/CodeSystem/demo"
UNREACHABLE = ("The database of content loaded at run time ({where}) cannot be reached: nothing was loaded or "
               "unloaded, and this server keeps serving what it has; try again once the database is back (the "
               "server log says why it cannot be reached)")


def demo(version: str = "1", display: str = "Alpha") -> bytes:
    return json.dumps({"resourceType": "CodeSystem", "id": f"demo-{version}", "url": DEMO, "version": version,
                       "status": "active", "content": "complete",
                       "concept": [{"code": "A", "display": display}]}).encode()


def display(client, version: str | None = None) -> str | int:
    """The display of demo's code A (of `version`, else the latest loaded), or the status."""
    query = {"system": DEMO, "code": "A", **({"version": version} if version else {})}
    response = client.get("/r4/CodeSystem/$lookup", query_string=query)
    if response.status_code != 200:
        return response.status_code
    return next(p["valueString"] for p in response.get_json()["parameter"] if p["name"] == "display")


def issue(response) -> tuple[int, str, str, str]:
    [only] = response.get_json()["issue"]
    return response.status_code, only["code"], only["extension"][0]["valueString"], only["details"]["text"]


def eventually(check, expected, seconds: float = 10.0):
    """`check()` until it gives `expected` (what it gave last otherwise): a change reaches another
    process through a notification, not at once."""
    deadline = time.monotonic() + seconds
    while True:
        found = check()
        if found == expected or time.monotonic() > deadline:
            return found
        time.sleep(0.02)


@pytest.fixture(scope="module")
def cluster() -> Iterator[Cluster]:
    with throwaway_cluster() as running:
        yield running


@pytest.fixture
def database(cluster, request) -> str:
    """A fresh database per test: its tests do not see each other's loads."""
    return cluster.create_database(f"t_{request.node.name.lower()[:40].replace('[', '_').replace(']', '')}")


def app_of(service, conninfo: str, poll: int = 1):
    app = create_app({"FHIR_PLUGIN_ADMIN_TOKEN": TOKEN, "FHIR_PLUGIN_LOAD_DATABASE": conninfo,
                      "FHIR_PLUGIN_LOAD_POLL": poll}, service=service)
    return app


@pytest.fixture
def replicas(service, database) -> Iterator[tuple]:
    apps = [app_of(service, database), app_of(service, database)]
    yield tuple(app.test_client() for app in apps)
    for app in apps:
        app.extensions["fhir_plugin"].runtime.store.close()


def store_of(client) -> DatabaseStore:
    return client.application.extensions["fhir_plugin"].runtime.store


def test_a_load_through_one_is_served_by_the_other(replicas):
    one, other = replicas
    assert (display(one), display(other)) == (404, 404)
    response = one.post("/admin/content?name=demo.json", data=demo(), headers=AUTH)
    assert response.status_code == 201
    assert display(one) == "Alpha"  # the replica that loaded it, at once
    assert eventually(lambda: display(other), "Alpha") == "Alpha"
    # a new version under the same name replaces it everywhere; an unload removes it everywhere
    assert one.post("/admin/content?name=demo.json", data=demo("1", "Alpha 2"), headers=AUTH).status_code == 200
    assert eventually(lambda: display(other), "Alpha 2") == "Alpha 2"
    assert other.delete("/admin/content/demo.json", headers=AUTH).status_code == 200
    assert eventually(lambda: display(one), 404) == 404
    assert other.delete("/admin/content/demo.json", headers=AUTH).status_code == 404


def test_the_listing_names_the_database_and_the_files(replicas, cluster, database):
    one, other = replicas
    one.post("/admin/content?name=demo.json", data=demo(), headers=AUTH)
    eventually(lambda: display(other), "Alpha")
    listing = other.get("/admin/content", headers=AUTH).get_json()
    dbname = database.split("dbname=")[1].split()[0]
    assert listing == {"directory": None,
                       "database": f"host=127.0.0.1 port={cluster.port} dbname={dbname} user=fhir_plugin",
                       "files": [{"name": "demo.json", "state": "loaded", "resources": [
                           {"resourceType": "CodeSystem", "url": DEMO, "version": "1", "id": "demo-1"}]}]}


def test_a_conflict_with_what_another_replica_loaded_is_refused(replicas):
    one, other = replicas
    assert one.post("/admin/content?name=a.json", data=demo("1", "Alpha"), headers=AUTH).status_code == 201
    # the other has not necessarily seen it yet: the check reads the database inside the lock
    response = other.post("/admin/content?name=b.json", data=demo("1", "Other"), headers=AUTH)
    assert response.status_code == 422
    assert eventually(lambda: display(other), "Alpha") == "Alpha"
    with psycopg.connect(store_of(one).conninfo) as connection:
        names = [row[0] for row in connection.execute("SELECT name FROM fhir_plugin_loads ORDER BY name")]
    assert names == ["a.json"]


def test_a_process_started_later_catches_up_from_the_table(service, database, replicas):
    one, _ = replicas
    one.post("/admin/content?name=demo.json", data=demo(), headers=AUTH)
    late = app_of(service, database).test_client()
    try:
        assert display(late) == "Alpha"  # built from the table at start, no notification needed
    finally:
        store_of(late).close()


def test_requests_never_reach_the_database_even_to_catch_up(replicas, monkeypatch):
    """The per-request check compares a number in memory; catching up with a change reads the
    listener's snapshot (what the database held at that generation), not the database."""
    one, other = replicas
    assert (display(one), display(other)) == (404, 404)
    store = store_of(other)
    assert eventually(lambda: store.marker() is not None and store.marker()[0] >= 0, True)
    display(other)  # caught up with the first generation its listener read

    def refused(*args, **kwargs):
        raise AssertionError("a request of the other replica reached the database")

    monkeypatch.setattr(store, "_connect", refused)  # its listener keeps the connection it has
    assert one.post("/admin/content?name=demo.json", data=demo(), headers=AUTH).status_code == 201
    assert eventually(lambda: display(other), "Alpha") == "Alpha"
    for _ in range(50):
        assert display(other) == "Alpha"


def test_a_database_that_cannot_be_reached_refuses_loads_and_serving_goes_on(service, caplog):
    port = free_port()  # nothing listens there
    conninfo = f"host=127.0.0.1 port={port} dbname=nowhere user=fhir_plugin connect_timeout=2"
    with caplog.at_level(logging.ERROR, logger="fhir_plugin.runtime.pgstore"):
        app = app_of(service, conninfo)  # the start does not stop
    client = app.test_client()
    try:
        assert client.get("/readyz").status_code == 200
        assert display(client) == 404  # the start-up content is served
        response = client.post("/admin/content?name=demo.json", data=demo(), headers=AUTH)
        where = f"host=127.0.0.1 port={port} dbname=nowhere user=fhir_plugin"
        assert issue(response) == (503, "transient", "LOAD_DATABASE_UNREACHABLE", UNREACHABLE.format(where=where))
        assert client.delete("/admin/content/demo.json", headers=AUTH).status_code == 503
        for _ in range(100):
            client.get("/r4/CodeSystem/$lookup", query_string={"system": DEMO, "code": "A"})
        lines = [r.getMessage() for r in caplog.records if "cannot be used" in r.getMessage()]
        # one line for the reason, however many requests and tries: the log is not flooded
        assert len(lines) == 1, lines
        assert lines[0].startswith(f"the database of content loaded at run time ({where}) cannot be used: ")
        assert "Connection refused" in lines[0]
    finally:
        store_of(client).close()


def test_a_wrong_schema_version_refuses_loads_and_serving_goes_on(service, database, replicas, caplog):
    one, _ = replicas
    assert one.post("/admin/content?name=demo.json", data=demo(), headers=AUTH).status_code == 201
    with psycopg.connect(database, autocommit=True) as connection:
        connection.execute("UPDATE fhir_plugin_meta SET value = 99 WHERE key = 'schema'")
    response = one.post("/admin/content?name=other.json", data=demo("2"), headers=AUTH)
    dbname = database.split("dbname=")[1].split()[0]
    where = database.replace(f"dbname={dbname}", f"dbname={dbname}")
    assert issue(response) == (503, "transient", "LOAD_DATABASE_SCHEMA", (
        f"The database of content loaded at run time ({where}) holds schema version 99, and this server needs "
        f"version {SCHEMA_VERSION}: nothing was loaded or unloaded, and this server keeps serving what it has; "
        "upgrade the servers that share this database to one version"))
    assert display(one) == "Alpha"
    with caplog.at_level(logging.ERROR, logger="fhir_plugin.runtime.pgstore"):
        late = app_of(service, database).test_client()  # a start with it: serves the start-up content
    try:
        assert display(late) == 404
        assert any("holds schema version 99" in r.getMessage() for r in caplog.records)
    finally:
        store_of(late).close()


def test_the_database_going_away_loses_nothing_committed(service, cluster, replicas):
    one, other = replicas
    assert one.post("/admin/content?name=demo.json", data=demo(), headers=AUTH).status_code == 201
    assert eventually(lambda: display(other), "Alpha") == "Alpha"
    # a load waiting for the lock when the database goes away: its transaction is lost, and told
    blocker = psycopg.connect(store_of(one).conninfo)
    blocker.execute("SELECT pg_advisory_xact_lock(%s)", (LOCK,))
    import threading

    answers: list = []
    loading = threading.Thread(target=lambda: answers.append(
        other.post("/admin/content?name=late.json", data=demo("2", "Late"), headers=AUTH)))
    loading.start()
    time.sleep(1)
    cluster.stop()
    try:
        loading.join(30)
        assert issue(answers[0])[:3] == (503, "transient", "LOAD_DATABASE_UNREACHABLE")
        assert (display(one), display(other)) == ("Alpha", "Alpha")  # what was loaded stays served
        one.application.extensions["fhir_plugin"].runtime.serve(service)  # a reload meanwhile keeps it too
        assert display(one) == "Alpha"
        assert one.post("/admin/content?name=x.json", data=demo("3"), headers=AUTH).status_code == 503
    finally:
        cluster.start()
    blocker.close()
    # once back: the committed load is there, the refused one is not, and a load works again
    assert one.post("/admin/content?name=again.json", data=demo("4", "Again"), headers=AUTH).status_code == 201
    for client in (one, other):
        assert eventually(lambda: (display(client, "1"), display(client, "2"), display(client, "4")),
                          ("Alpha", 404, "Again")) == ("Alpha", 404, "Again")
    listing = other.get("/admin/content", headers=AUTH).get_json()
    assert [file["name"] for file in listing["files"]] == ["again.json", "demo.json"]


def test_a_change_without_a_notification_is_found_by_the_poll(replicas, database):
    """LISTEN/NOTIFY loses a notification sent while a listener's connection is being remade: the
    poll (FHIR_PLUGIN_LOAD_POLL, 1 s here) finds the generation changed all the same. The change is
    written here as a load writes it, but without NOTIFY."""
    import hashlib

    one, other = replicas
    assert one.post("/admin/content?name=first.json", data=demo(), headers=AUTH).status_code == 201  # the schema
    assert eventually(lambda: display(other), "Alpha") == "Alpha"
    data = demo("2", "Polled")
    with psycopg.connect(database) as connection:
        connection.execute("INSERT INTO fhir_plugin_loads (name, digest, data) VALUES (%s, %s, %s)",
                           ("polled.json", hashlib.sha256(data).hexdigest(), data))
        connection.execute("UPDATE fhir_plugin_meta SET value = value + 1 WHERE key = 'generation'")
    assert eventually(lambda: (display(one, "2"), display(other, "2")), ("Polled", "Polled")) == ("Polled", "Polled")


def test_without_psycopg_the_setting_is_refused_with_a_line_to_act_on(monkeypatch):
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "psycopg" else real(name, *a))
    with pytest.raises(ValueError) as refused:
        DatabaseStore("host=db")
    assert str(refused.value) == "FHIR_PLUGIN_LOAD_DATABASE needs psycopg 3: pip install 'fhir-plugin[postgres]'"


@pytest.mark.parametrize("conninfo, shown", [
    ("postgresql://loader:s3cret@db.internal:5433/loads", "host=db.internal port=5433 dbname=loads user=loader"),
    ("host=db password=s3cret dbname=loads", "host=db dbname=loads"),
    ("", "the default database"),
    ("host='unclosed", "the configured database"),
])
def test_the_password_is_never_shown(conninfo, shown):
    from fhir_plugin.runtime.pgschema import shown_conninfo

    assert shown_conninfo(conninfo) == shown
