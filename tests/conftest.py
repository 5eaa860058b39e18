"""Fixtures shared across the suite: the stores, and an HTTP receiver for alerts.

Tests that take ``store`` (or ``open_store``, or ``store_target``) run against each store: a
DuckDB file, and a database in a throwaway PostgreSQL cluster that this session starts (and
stops) itself, once, whichever directories ask for it (the store suite, the outbox, the
end-to-end tests).

The cluster needs Debian's ``postgresql`` package (``.ci/run`` installs it); without it the
PostgreSQL half of each such test skips and the DuckDB half still runs.
"""

from __future__ import annotations

import glob
import itertools
import json
import os
import shutil
import socket
import subprocess
import tempfile
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from tripwire.store import DuckDBStore

Store = Any  # DuckDBStore or PostgresStore: the same methods
Opener = Callable[[], Store]

NOT_INSTALLED = "PostgreSQL is not installed (.ci/run installs it)"
LOCALHOST = "127.0.0.1"


def _bindir() -> Path | None:
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
class Server:
    """A running throwaway cluster: trust authentication, 127.0.0.1 only, one database."""

    port: int
    _names: Iterator[int]
    dbname: str = "tripwire"

    def dsn(self, dbname: str | None = None, schema: str | None = None) -> str:
        dsn = f"host=127.0.0.1 port={self.port} user=postgres dbname={dbname or self.dbname}"
        # The store creates its tables unqualified, so they land in the search path's first
        # schema: the test's own.
        return dsn + (f" options='-c search_path={schema}'" if schema else "")

    def admin(self, statement: str, dbname: str = "postgres") -> None:
        import psycopg  # only here: the DuckDB half of the suite needs no psycopg

        with psycopg.connect(self.dsn(dbname), autocommit=True) as db:
            db.execute(statement.encode())

    def new_schema(self) -> str:
        """A schema of its own, empty (a new database would take 0.3 s)."""
        schema = f"test_{next(self._names)}"
        self.admin(f"CREATE SCHEMA {schema}", self.dbname)
        return schema

    def new_dsn(self) -> str:
        """A DSN whose store starts empty."""
        return self.dsn(schema=self.new_schema())

    def new_uri(self) -> str:
        """A ``postgresql://`` URI whose store starts empty, as ``--store`` takes it."""
        return (
            f"postgresql://postgres@127.0.0.1:{self.port}/{self.dbname}"
            f"?options=-csearch_path%3D{self.new_schema()}"
        )


@pytest.fixture(scope="session")
def postgres_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    bindir = _bindir()
    if bindir is None:
        pytest.skip(NOT_INSTALLED)
    pytest.importorskip("psycopg", reason="psycopg is not installed: pip install '.[test]'")
    # initdb refuses to run as root; the Debian package's postgres user runs the server then.
    as_root = os.geteuid() == 0
    prefix = ["runuser", "-u", "postgres", "--"] if as_root else []
    if as_root:
        # Not under pytest's base temp: that is private to root, and any pytest session that
        # starts meanwhile makes it private again, cutting the server off from its files.
        root = Path(tempfile.mkdtemp(prefix="tripwire-postgres-"))
        shutil.chown(root, "postgres", "postgres")
    else:
        root = tmp_path_factory.mktemp("postgres")
    data, log = root / "data", root / "server.log"
    port = _free_port()

    def run(*command: str) -> None:
        done = subprocess.run(
            [*prefix, *command], capture_output=True, text=True, check=False, timeout=60
        )
        if done.returncode:
            server_log = log.read_text() if log.exists() else ""
            pytest.fail(f"{' '.join(command)} failed:\n{done.stdout}{done.stderr}{server_log}")

    started = False
    try:
        # --no-sync and fsync=off: a cluster that lives for one test session needs no
        # durability, and skipping the flushes keeps the many small writes of the tests cheap.
        run(
            str(bindir / "initdb"),
            "-D", str(data),
            "-U", "postgres",
            "--auth=trust",
            "--encoding=UTF8",
            "--locale=C",
            "--no-sync",
        )  # fmt: skip
        options = (
            f"-c listen_addresses=127.0.0.1 -p {port} -k {root} "
            "-c fsync=off -c synchronous_commit=off -c full_page_writes=off"
        )
        started = True  # from here on, stop whatever pg_ctl may have left running
        run(str(bindir / "pg_ctl"), "-D", str(data), "-l", str(log), "-o", options, "-w", "start")
        server = Server(port=port, _names=itertools.count())
        server.admin(f"CREATE DATABASE {server.dbname}")
        yield server
    finally:
        try:
            if started:
                # pg_ctl stops the postmaster whose pid it recorded in the data directory:
                # the one it started above, nothing else.
                subprocess.run(
                    [*prefix, str(bindir / "pg_ctl"), "-D", str(data), "-m", "fast", "stop"],
                    capture_output=True,
                    check=False,
                    timeout=60,
                )
        finally:
            if as_root:
                shutil.rmtree(root, ignore_errors=True)


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
