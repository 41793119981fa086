"""A throwaway PostgreSQL cluster for tests: Debian's binaries (`apt-get install postgresql`), a data
directory made with initdb in a temporary directory, listening on 127.0.0.1 on a free port, with
trust authentication for its one user. Nothing of the system's PostgreSQL (its clusters, its
service) is used or touched.

initdb and postgres refuse to run as root, and CI runs as root: as root, the cluster's commands
run as `nobody` through `runuser` (util-linux, in every Debian), and the directory is given to it.
pytest-postgresql was considered: it starts the same binaries but leaves running them as root to
the caller, so it would save little here and add a dependency.
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

from live_server import free_port

INSTALL = "apt-get install postgresql"
USER = "fhir_plugin"


def binaries() -> Path | None:
    """The folder of initdb, pg_ctl and postgres: on PATH, else Debian's /usr/lib/postgresql/N/bin."""
    found = shutil.which("initdb")
    if found and shutil.which("pg_ctl"):
        return Path(found).resolve().parent
    for folder in sorted(glob.glob("/usr/lib/postgresql/*/bin"), reverse=True):
        if (Path(folder) / "initdb").exists() and (Path(folder) / "pg_ctl").exists():
            return Path(folder)
    return None


def require_postgres() -> Path:
    folder = binaries()
    if folder is None:
        pytest.skip(f"PostgreSQL is not installed: {INSTALL}")
    if os.geteuid() == 0 and not shutil.which("runuser"):
        pytest.skip("running as root without runuser (util-linux) to start PostgreSQL as nobody")
    return folder


@dataclass
class Cluster:
    bin: Path
    directory: Path  # the temporary directory: data/, the log, the socket
    port: int

    @property
    def data(self) -> Path:
        return self.directory / "data"

    @property
    def log(self) -> Path:
        return self.directory / "postgres.log"

    def conninfo(self, dbname: str = "postgres") -> str:
        return f"host=127.0.0.1 port={self.port} dbname={dbname} user={USER}"

    def run(self, *command: str) -> subprocess.CompletedProcess[str]:
        prefix = ["runuser", "-u", "nobody", "--"] if os.geteuid() == 0 else []
        return subprocess.run([*prefix, *command], capture_output=True, text=True, timeout=60, check=True,
                              cwd=self.directory)

    def start(self) -> None:
        self.run(str(self.bin / "pg_ctl"), "-D", str(self.data), "-l", str(self.log), "-w", "-t", "30",
                 "-o", f"-p {self.port} -k {self.directory} -c listen_addresses=127.0.0.1 -c fsync=off", "start")

    def stop(self) -> None:
        """Stop at once (fast: every session is ended, as when the database host goes away)."""
        self.run(str(self.bin / "pg_ctl"), "-D", str(self.data), "-m", "fast", "-w", "stop")

    def running(self) -> bool:
        return (self.data / "postmaster.pid").exists()

    def create_database(self, name: str) -> str:
        import psycopg

        with psycopg.connect(self.conninfo(), autocommit=True) as connection:
            connection.execute(f"CREATE DATABASE {name}")
        return self.conninfo(name)


@contextmanager
def throwaway_cluster() -> Iterator[Cluster]:
    folder = require_postgres()
    directory = Path(tempfile.mkdtemp(prefix="fhir-plugin-pg-"))
    if os.geteuid() == 0:
        nobody = pwd.getpwnam("nobody")
        os.chown(directory, nobody.pw_uid, nobody.pw_gid)
    directory.chmod(0o700)
    cluster = Cluster(folder, directory, free_port())
    try:
        cluster.run(str(folder / "initdb"), "-D", str(cluster.data), "-U", USER, "-A", "trust", "-E", "UTF8",
                    "--no-sync", "--no-instructions")
        cluster.start()
        yield cluster
    finally:
        if cluster.running():
            try:
                cluster.stop()
            except subprocess.SubprocessError:
                pid = int((cluster.data / "postmaster.pid").read_text().split()[0])
                os.kill(pid, 9)
                time.sleep(0.5)
        shutil.rmtree(directory, ignore_errors=True)
