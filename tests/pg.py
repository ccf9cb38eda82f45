"""A real PostgreSQL server for the tests: ``initdb`` + ``pg_ctl`` in a temporary folder on a free loopback
port, as an unprivileged user (PostgreSQL refuses to run as root), stopped at the end of the session.

Skipped only when the PostgreSQL binaries or psycopg are absent (``.ci/run`` installs both).
"""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
import tempfile
import uuid

from tests.procs import free_port


def _bin(name: str) -> str | None:
    found = shutil.which(name)
    if found:
        return found
    candidates = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))
    return candidates[-1] if candidates else None


def missing() -> str:
    """Why there is no PostgreSQL to test with, or "" when there is."""
    try:
        import psycopg  # noqa: F401
    except ImportError:
        return "psycopg is not installed (pip install '.[test]')"
    if not (_bin("initdb") and _bin("pg_ctl")):
        return "PostgreSQL binaries (initdb, pg_ctl) are not installed (apt-get install postgresql)"
    return ""


class PgServer:
    def __init__(self) -> None:
        self.dir = tempfile.mkdtemp(prefix="bifrost-pg-")
        self.data = os.path.join(self.dir, "data")
        self.port = free_port()
        self.as_user: list[str] = []
        if os.geteuid() == 0:
            os.chmod(self.dir, 0o777)
            self.as_user = ["runuser", "-u", "nobody", "--"]
        self._run(_bin("initdb"), "-D", self.data, "-U", "postgres", "--auth=trust", "-E", "UTF8", "--no-sync")
        self._run(_bin("pg_ctl"), "-D", self.data, "-w", "-t", "30", "-l", os.path.join(self.dir, "log"),
                  "-o", f"-p {self.port} -k {self.dir} -c listen_addresses=127.0.0.1 -c fsync=off "
                  f"-c max_connections=200", "start")

    def _run(self, *cmd: str) -> None:
        subprocess.run([*self.as_user, *cmd], check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                       cwd=self.dir)

    def config(self, db_name: str) -> dict:
        return {"host": "127.0.0.1", "port": self.port, "user": "postgres", "password": "", "db_name": db_name,
                "ssl_mode": "disable"}

    def new_database(self) -> dict:
        """A fresh, empty database; its ``config_store``/``logs_store`` ``config`` section."""
        import psycopg

        name = "t_" + uuid.uuid4().hex[:12]
        with psycopg.connect(host="127.0.0.1", port=self.port, user="postgres", dbname="postgres",
                             autocommit=True) as conn:
            conn.execute(f"CREATE DATABASE {name}")
        return self.config(name)

    def stop(self) -> None:
        try:
            self._run(_bin("pg_ctl"), "-D", self.data, "-m", "immediate", "stop")
        finally:
            shutil.rmtree(self.dir, ignore_errors=True)
