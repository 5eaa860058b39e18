"""The PostgreSQL database the benchmarks write to: a running one (``--postgres DSN``), or a
throwaway cluster started here with the tests' helper (``tests/postgres_cluster.py``), and in
either a fresh schema per run.
"""

from __future__ import annotations

import importlib.util
import os
import sys
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import ModuleType
from typing import Any

POSTGRES_CLUSTER = Path(__file__).resolve().parents[1] / "tests" / "postgres_cluster.py"


def by_path(path: Path) -> ModuleType:
    """A module loaded from its file (test helpers are not on ``sys.path``)."""
    spec = importlib.util.spec_from_file_location(f"tripwire_benchmark_{path.stem}", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up by name
    spec.loader.exec_module(module)
    return module


@contextmanager
def postgres_server(dsn: str | None) -> Iterator[str]:
    """``dsn`` as it is, or the DSN of a throwaway cluster started (and stopped) here."""
    if dsn is not None:
        yield dsn
        return
    cluster = by_path(POSTGRES_CLUSTER)
    if cluster.bindir() is None:
        raise SystemExit(cluster.NOT_INSTALLED)
    # The default durability (fsync, synchronous commit): what a production server pays.
    with cluster.running(durable=True) as server:
        yield server.dsn()


@contextmanager
def postgres_schema(dsn: str) -> Iterator[str]:
    """A DSN whose tables land in a new, empty schema of the database; dropped afterwards."""
    import psycopg
    from psycopg.conninfo import make_conninfo

    schema = f"tripwire_benchmark_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(dsn, autocommit=True) as admin:
        admin.execute(f"CREATE SCHEMA {schema}".encode())
        try:
            # The store creates its tables unqualified: in the search path's first schema.
            yield make_conninfo(dsn, options=f"-c search_path={schema}")
        finally:
            admin.execute(f"DROP SCHEMA {schema} CASCADE".encode())


def postgres_version(store: Any) -> str:
    """The server's version, as ``SHOW server_version`` gives it (without the build)."""
    ((text,),) = store.connection.execute("SHOW server_version").fetchall()
    return str(text).split()[0]


def backend_cpu_seconds(store: Any) -> float | None:
    """CPU seconds (user + system) so far of the PostgreSQL backend process serving the
    store's connection; None where its ``/proc`` entry cannot be read (a remote server)."""
    ((pid,),) = store.connection.execute("SELECT pg_backend_pid()").fetchall()
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as stat:
            fields = stat.read().rsplit(")", 1)[1].split()
    except OSError:
        return None
    # Fields 14 and 15 of stat(5), utime and stime, in clock ticks; [0] here is field 3.
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
