"""The PostgreSQL side of run-time loads (runtime/pgstore.py): the schema, its version, and the
statements. psycopg is imported inside each function: it is an optional dependency, needed only
when FHIR_PLUGIN_LOAD_DATABASE is set."""

from __future__ import annotations

import logging
import random
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from .errors import LoadStoreUnavailable

if TYPE_CHECKING:
    import psycopg

log = logging.getLogger(__name__)

SCHEMA_VERSION = 1
CHANNEL = "fhir_plugin_loads"
LOCK = 0x66686972_6c6f6164  # the advisory lock of changes: b"fhirload"
META = "fhir_plugin_meta"
LOADS = "fhir_plugin_loads"
CONNECT_TIMEOUT = 5  # seconds; a load waits at most this long for a database that does not answer

_SCHEMA = f"""
CREATE TABLE {META} (key text PRIMARY KEY, value bigint NOT NULL);
CREATE TABLE {LOADS} (name text PRIMARY KEY, digest text NOT NULL, data bytea NOT NULL,
                      loaded_at timestamptz NOT NULL DEFAULT now());
"""

Marker = tuple[int, int, int]  # the database's epoch, its generation, and this process's catch-up nudges


@dataclass(frozen=True)
class Snapshot:
    """What the database held at a generation, as a listener read it: every load's name and digest,
    and the bytes of those its process had not read then."""

    marker: Marker
    listing: Mapping[str, str]
    data: Mapping[str, tuple[str, bytes]]

    def rows(self, names: list[str]) -> list[tuple[str, str, bytes]]:
        return [(name, *self.data[name]) for name in names if name in self.data]


def connect(conninfo: str, autocommit: bool = False) -> psycopg.Connection[Any]:
    import psycopg

    options = psycopg.conninfo.conninfo_to_dict(conninfo)
    # A cut network must not leave a listener waiting forever on a connection that is gone.
    for key, value in (("connect_timeout", CONNECT_TIMEOUT), ("keepalives_idle", 10),
                       ("keepalives_interval", 5), ("keepalives_count", 3), ("tcp_user_timeout", 20_000),
                       ("application_name", "fhir-plugin")):
        options.setdefault(key, value)
    return psycopg.connect(psycopg.conninfo.make_conninfo("", **options), autocommit=autocommit)


def read_meta(connection: psycopg.Connection[Any], where: str, create: bool = False) -> dict[str, int]:
    """The schema's meta rows (schema version, epoch, generation), {} when there is no schema,
    which is made first when `create`; LoadStoreUnavailable for another schema version."""
    found = connection.execute("SELECT to_regclass(%s) IS NOT NULL", (META,)).fetchone()
    if not (found and found[0]):
        if not create:
            return {}
        with connection.transaction():
            connection.execute("SELECT pg_advisory_xact_lock(%s)", (LOCK,))
            again = connection.execute("SELECT to_regclass(%s) IS NOT NULL", (META,)).fetchone()
            if not (again and again[0]):
                connection.execute(_SCHEMA.encode())
                # the epoch tells a database made again from one that went on: both count from 0
                connection.execute(f"INSERT INTO {META} VALUES ('schema', %s), ('generation', 0), ('epoch', %s)",
                                   (SCHEMA_VERSION, random.getrandbits(62)))
                log.info("created the schema (version %d) of content loaded at run time in %s", SCHEMA_VERSION, where)
    meta = {str(key): int(value) for key, value in connection.execute(f"SELECT key, value FROM {META}")}
    if meta.get("schema") != SCHEMA_VERSION:
        raise LoadStoreUnavailable("LOAD_DATABASE_SCHEMA", where=where, found=meta.get("schema"),
                                   expected=SCHEMA_VERSION)
    return meta


def digests(connection: psycopg.Connection[Any]) -> dict[str, str]:
    """Every load's name and the SHA-256 of its bytes, in name order."""
    return {str(name): str(digest) for name, digest in
            connection.execute(f"SELECT name, digest FROM {LOADS} ORDER BY name")}


def rows(connection: psycopg.Connection[Any], names: list[str]) -> list[tuple[str, str, bytes]]:
    """(name, digest, bytes) of the loads `names`."""
    if not names:
        return []
    return [(str(name), str(digest), bytes(data)) for name, digest, data in
            connection.execute(f"SELECT name, digest, data FROM {LOADS} WHERE name = ANY(%s)", (names,))]


def write(connection: psycopg.Connection[Any], name: str, digest: str, data: bytes) -> bool:
    """Keep `data` as the load `name`; whether it is a new name."""
    row = connection.execute(
        f"INSERT INTO {LOADS} (name, digest, data) VALUES (%s, %s, %s) ON CONFLICT (name) DO UPDATE "
        "SET digest = excluded.digest, data = excluded.data, loaded_at = now() RETURNING (xmax = 0)",
        (name, digest, data)).fetchone()
    return bool(row and row[0])


def delete(connection: psycopg.Connection[Any], name: str) -> None:
    connection.execute(f"DELETE FROM {LOADS} WHERE name = %s", (name,))


def lock(connection: psycopg.Connection[Any]) -> None:
    """Wait for the lock of changes, held until the transaction ends: one change at a time."""
    connection.execute("SELECT pg_advisory_xact_lock(%s)", (LOCK,))


def announce(connection: psycopg.Connection[Any]) -> tuple[int, int]:
    """One more generation, NOTIFYed (PostgreSQL delivers it at commit); (epoch, generation)."""
    generation = connection.execute(
        f"UPDATE {META} SET value = value + 1 WHERE key = 'generation' RETURNING value").fetchone()
    epoch = connection.execute(f"SELECT value FROM {META} WHERE key = 'epoch'").fetchone()
    assert generation is not None and epoch is not None  # the schema's rows, checked by read_meta
    connection.execute("SELECT pg_notify(%s, %s)", (CHANNEL, str(generation[0])))
    return int(epoch[0]), int(generation[0])


def shown_conninfo(conninfo: str) -> str:
    """The connection string without its password, for messages and the log."""
    try:
        import psycopg

        options = psycopg.conninfo.conninfo_to_dict(conninfo)
    except Exception:  # noqa: BLE001 - psycopg missing or a string it cannot read: show neither
        return "the configured database"
    return " ".join(f"{key}={options[key]}" for key in ("host", "port", "dbname", "user") if options.get(key)) or \
        "the default database"
