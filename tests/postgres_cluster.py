"""A throwaway PostgreSQL cluster on 127.0.0.1: Debian's ``initdb`` and ``pg_ctl``, trust
authentication, no durability (it lives as long as a test session or a benchmark run).

Plain Python, no pytest: ``benchmarks/consumers.py`` loads it by path, as the tests load their
helpers (under ``--import-mode=importlib`` test directories are not on ``sys.path``).
"""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

NOT_INSTALLED = "PostgreSQL is not installed (.ci/run installs it)"


def bindir() -> Path | None:
    """The newest installed PostgreSQL's binaries (Debian keeps each major version apart)."""
    found = glob.glob("/usr/lib/postgresql/*/bin/initdb")
    if not found:
        on_path = shutil.which("initdb")
        return Path(on_path).parent if on_path else None
    newest = max(found, key=lambda p: int(Path(p).parts[-3]) if Path(p).parts[-3].isdigit() else 0)
    return Path(newest).parent


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@dataclass
class Cluster:
    """A running cluster: user ``postgres``, trust authentication, 127.0.0.1 only."""

    port: int
    dbname: str

    def dsn(self, dbname: str | None = None, schema: str | None = None) -> str:
        dsn = f"host=127.0.0.1 port={self.port} user=postgres dbname={dbname or self.dbname}"
        # The store creates its tables unqualified, so they land in the search path's first
        # schema.
        return dsn + (f" options='-c search_path={schema}'" if schema else "")

    def admin(self, statement: str, dbname: str = "postgres") -> None:
        import psycopg  # only here: loading this module needs no psycopg

        with psycopg.connect(self.dsn(dbname), autocommit=True) as db:
            db.execute(statement.encode())


@contextmanager
def running(dbname: str = "tripwire", durable: bool = False) -> Iterator[Cluster]:
    """Start a cluster holding an empty database ``dbname``; stop and delete it afterwards.

    Not ``durable`` (for tests): no fsync, no waiting for the WAL on commit. ``durable`` (for
    benchmarks): PostgreSQL's defaults, what a production server pays for each commit.

    Raises ``RuntimeError`` (with the server's log) when it does not start, and
    ``FileNotFoundError`` when PostgreSQL is not installed.
    """
    binaries = bindir()
    if binaries is None:
        raise FileNotFoundError(NOT_INSTALLED)
    # initdb refuses to run as root; the Debian package's postgres user runs the server then,
    # in a directory of its own (not under a root-only one such as pytest's base temp).
    as_root = os.geteuid() == 0
    prefix = ["runuser", "-u", "postgres", "--"] if as_root else []
    root = Path(tempfile.mkdtemp(prefix="tripwire-postgres-"))
    if as_root:
        shutil.chown(root, "postgres", "postgres")
    data, log = root / "data", root / "server.log"
    port = _free_port()

    def run(*command: str) -> None:
        done = subprocess.run(
            [*prefix, *command], capture_output=True, text=True, check=False, timeout=60
        )
        if done.returncode:
            server_log = log.read_text() if log.exists() else ""
            raise RuntimeError(
                f"{' '.join(command)} failed:\n{done.stdout}{done.stderr}{server_log}"
            )

    started = False
    try:
        # --no-sync (and, unless durable, fsync=off): a cluster that lives for one session
        # needs no durability, and skipping the flushes keeps many small writes cheap.
        run(
            str(binaries / "initdb"),
            "-D", str(data),
            "-U", "postgres",
            "--auth=trust",
            "--encoding=UTF8",
            "--locale=C",
            "--no-sync",
        )  # fmt: skip
        options = f"-c listen_addresses=127.0.0.1 -p {port} -k {root}"
        if not durable:
            options += " -c fsync=off -c synchronous_commit=off -c full_page_writes=off"
        started = True  # from here on, stop whatever pg_ctl may have left running
        run(str(binaries / "pg_ctl"), "-D", str(data), "-l", str(log), "-o", options, "-w", "start")
        cluster = Cluster(port=port, dbname=dbname)
        cluster.admin(f"CREATE DATABASE {dbname}")
        yield cluster
    finally:
        try:
            if started:
                # pg_ctl stops the postmaster whose pid it recorded in the data directory:
                # the one it started above, nothing else.
                subprocess.run(
                    [*prefix, str(binaries / "pg_ctl"), "-D", str(data), "-m", "fast", "stop"],
                    capture_output=True,
                    check=False,
                    timeout=60,
                )
        finally:
            shutil.rmtree(root, ignore_errors=True)
