"""Fixtures shared across the suite: the stores, and an HTTP receiver for alerts.

Tests that take ``store`` (or ``open_store``, or ``store_target``) run against each store: a
DuckDB file, and a database in a throwaway PostgreSQL cluster that this session starts (and
stops) itself, once, whichever directories ask for it (the store suite, the outbox, the
end-to-end tests).

The cluster needs Debian's ``postgresql`` package (``.ci/run`` installs it); without it the
PostgreSQL half of each such test skips and the DuckDB half still runs.
"""

from __future__ import annotations

import importlib.util
import itertools
import json
import socket
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from tripwire.store import DuckDBStore

Store = Any  # DuckDBStore or PostgresStore: the same methods
Opener = Callable[[], Store]

LOCALHOST = "127.0.0.1"


def _postgres_cluster() -> ModuleType:
    # By path: with --import-mode=importlib the test directories are not on sys.path (the
    # benchmarks load the same helper).
    name = "tripwire_tests_postgres_cluster"
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(
            name, Path(__file__).with_name("postgres_cluster.py")
        )
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module  # dataclasses look their module up by name
        spec.loader.exec_module(module)
    return sys.modules[name]


postgres_cluster = _postgres_cluster()


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind((LOCALHOST, 0))
        port: int = probe.getsockname()[1]
        return port


@dataclass
class Server:
    """The session's throwaway cluster (``tests/postgres_cluster.py``), handing each test an
    empty schema of its own in one database."""

    cluster: Any  # postgres_cluster.Cluster, loaded by path
    _names: Iterator[int] = field(default_factory=itertools.count)

    @property
    def port(self) -> int:
        return int(self.cluster.port)

    @property
    def dbname(self) -> str:
        return str(self.cluster.dbname)

    def dsn(self, dbname: str | None = None, schema: str | None = None) -> str:
        return str(self.cluster.dsn(dbname, schema))

    def admin(self, statement: str, dbname: str = "postgres") -> None:
        self.cluster.admin(statement, dbname)

    def new_schema(self) -> str:
        """A schema of its own, empty (a new database would take 0.3 s)."""
        schema = f"test_{next(self._names)}"
        self.admin(f"CREATE SCHEMA {schema}", self.dbname)
        return schema

    def new_dsn(self) -> str:
        """A DSN whose store starts empty: the store creates its tables unqualified, so they
        land in the search path's first schema, the test's own."""
        return self.dsn(schema=self.new_schema())

    def new_uri(self) -> str:
        """A ``postgresql://`` URI whose store starts empty, as ``--store`` takes it."""
        return (
            f"postgresql://postgres@{LOCALHOST}:{self.port}/{self.dbname}"
            f"?options=-csearch_path%3D{self.new_schema()}"
        )


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[Server]:
    if postgres_cluster.bindir() is None:
        pytest.skip(postgres_cluster.NOT_INSTALLED)
    pytest.importorskip("psycopg", reason="psycopg is not installed: pip install '.[test]'")
    with ExitStack() as stack:
        try:
            cluster = stack.enter_context(postgres_cluster.running())
        except RuntimeError as exc:  # initdb or pg_ctl failed; the message has the server log
            pytest.fail(str(exc))
        yield Server(cluster)


@pytest.fixture(params=["duckdb", "postgres"])
def open_store(request: pytest.FixtureRequest, tmp_path: Path) -> Opener:
    """Opens a store on this test's database; call it again to reopen the same one."""
    if request.param == "duckdb":
        path = tmp_path / "tripwire.duckdb"
        return lambda: DuckDBStore(path)
    # Looked up only now, so that DuckDB-only runs never start a cluster.
    server: Server = request.getfixturevalue("postgres_server")
    from tripwire.store import PostgresStore

    dsn = server.new_dsn()
    return lambda: PostgresStore(dsn)


@pytest.fixture
def store(open_store: Opener) -> Iterator[Store]:
    """An open store on a fresh database, closed after the test."""
    opened = open_store()
    try:
        yield opened
    finally:
        opened.close()


@pytest.fixture
def free_port() -> Callable[[], int]:
    """A function giving a TCP port on 127.0.0.1 that nothing listens on right now."""
    return _free_port


@pytest.fixture(params=["duckdb", "postgres"])
def store_target(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """What ``--store`` takes for a fresh store: a DuckDB file, or a PostgreSQL URI."""
    if request.param == "duckdb":
        return str(tmp_path / "store.duckdb")
    server: Server = request.getfixturevalue("postgres_server")
    return server.new_uri()


@pytest.fixture
def backend(open_store: Opener, request: pytest.FixtureRequest) -> str:
    """``"duckdb"`` or ``"postgres"``: which store this run of the test has."""
    return str(request.node.callspec.params["open_store"])


# --- HTTP ----------------------------------------------------------------------------------


@dataclass
class Request:
    """One request as the receiver saw it."""

    method: str
    path: str
    headers: dict[str, str]
    body: Any  # parsed JSON, or None when the body was not JSON


@dataclass
class HttpReceiver:
    """A recording HTTP server; statuses are scripted per path (default 200)."""

    url: str
    requests: list[Request] = field(default_factory=list)
    statuses: dict[str, list[int]] = field(default_factory=dict)
    default_status: dict[str, int] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def script(self, path: str, *statuses: int) -> None:
        """Answer the next requests to ``path`` with ``statuses``, in order."""
        with self.lock:
            self.statuses.setdefault(path, []).extend(statuses)

    def answer(self, path: str, status: int) -> None:
        """Answer requests to ``path`` with ``status`` once any scripted ones are used up."""
        self.default_status[path] = status

    def to(self, path: str) -> list[Request]:
        """The requests received on ``path``."""
        with self.lock:
            return [request for request in self.requests if request.path == path]

    def status_for(self, path: str) -> int:
        with self.lock:
            scripted = self.statuses.get(path)
            if scripted:
                return scripted.pop(0)
            return self.default_status.get(path, 200)


def _handler(receiver: HttpReceiver) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            raw = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            try:
                body = json.loads(raw)
            except ValueError:
                body = None
            request = Request("POST", self.path, dict(self.headers.items()), body)
            with receiver.lock:
                receiver.requests.append(request)
            status = receiver.status_for(self.path)
            # Error answers echo the request headers, as some proxies do: the client must
            # keep such text free of secrets when it reports the failure.
            reply = b'{"status": "ok"}' if status < 300 else json.dumps(request.headers).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(reply)))
            self.end_headers()
            self.wfile.write(reply)

        def log_message(self, format: str, *args: Any) -> None:
            """Quiet: pytest output stays readable."""

    return Handler


@pytest.fixture
def http_receiver() -> Iterator[HttpReceiver]:
    """An HTTP receiver on 127.0.0.1 on a port of its own, in a thread."""
    receiver = HttpReceiver(url="")
    server = ThreadingHTTPServer((LOCALHOST, 0), _handler(receiver))
    receiver.url = f"http://{LOCALHOST}:{server.server_address[1]}"
    thread = threading.Thread(
        target=server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
    )
    thread.start()
    try:
        yield receiver
    finally:
        server.shutdown()
        server.server_close()
        thread.join()
