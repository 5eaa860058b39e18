"""When ``tripwire serve`` owns a DuckDB store: the server file it leaves beside the store, and
the client the other commands use to send their work to it.

DuckDB lets one process at a time open a file for writing. While ``tripwire serve`` runs on a
DuckDB store it keeps ``<store>.server.json`` beside it (readable by its user only) with its URL,
its pid and an admin token, and removes the file when it stops. A command that needs the store
reads the file first: when the server it names is alive and answers for that store, the command
sends its task (:mod:`tripwire.tasks`) to ``POST /v1/admin/<task>`` instead of opening the file.
A file left behind by a server that is gone (its pid ended, nothing listens on its port) is
ignored, and the next server replaces it.
"""

from __future__ import annotations

import os
import socket
from pathlib import Path
from typing import Any

import httpx
from pydantic import BaseModel, Field, ValidationError

from tripwire import __version__
from tripwire.errors import TripwireError
from tripwire.tasks import Request, Result, StoreOwner, Task

SUFFIX = ".server.json"
ADMIN = "/v1/admin"
# Connecting to a live server on this machine is immediate; a task may take as long as the job.
PROBE_TIMEOUT = httpx.Timeout(30.0, connect=10.0)
TASK_TIMEOUT = httpx.Timeout(30.0, read=None, write=None)


class ServerFile(BaseModel):
    """What ``<store>.server.json`` holds."""

    url: str = Field(description="The server's base URL, e.g. http://127.0.0.1:8080.")
    pid: int
    host: str = Field(description="The machine the server runs on: its pid means something there.")
    store: str = Field(description="The store file, as an absolute path.")
    token: str = Field(description="The bearer token of the server's /v1/admin endpoints.")
    version: str


def is_file_store(target: str) -> bool:
    """Whether ``target`` names a DuckDB file (not a PostgreSQL URI, not an in-memory store)."""
    return not target.startswith(("postgresql://", "postgres://")) and target != ":memory:"


def server_file(store_path: str) -> Path:
    """Where the server that owns the DuckDB file ``store_path`` says so."""
    return Path(store_path + SUFFIX)


def write_server_file(store_path: str, url: str, token: str) -> Path:
    """Announce this process as the owner of ``store_path``, replacing a stale file.

    The file is written whole (a reader never sees half of it) and only its owner may read it,
    since it holds the admin token.
    """
    path = server_file(store_path)
    info = ServerFile(
        url=url,
        pid=os.getpid(),
        host=socket.gethostname(),
        store=os.path.realpath(store_path),
        token=token,
        version=__version__,
    )
    scratch = path.with_name(f".{path.name}.{os.getpid()}")
    scratch.unlink(missing_ok=True)
    fd = os.open(scratch, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as file:
        file.write(info.model_dump_json(indent=2))
    os.replace(scratch, path)
    return path


def remove_server_file(store_path: str) -> None:
    """Withdraw the server file of ``store_path`` if this process wrote it."""
    path = server_file(store_path)
    info = _read(path)
    if info is not None and info.pid == os.getpid():
        path.unlink(missing_ok=True)


def _read(path: Path) -> ServerFile | None:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise TripwireError(f"{path}: cannot read the server file: {exc}") from exc
    try:
        return ServerFile.model_validate_json(text)
    except ValidationError:
        return None  # not written by tripwire serve (it writes whole files): not a live server


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process
        return True
    return True


def find_server(target: str) -> StoreServer | None:
    """The running ``tripwire serve`` that owns the DuckDB file ``target``, if one does.

    A server file whose process has ended, or whose server does not listen any more, or which
    was copied beside another file, is stale: None. A server that answers but refuses the
    file's token is an error.
    """
    if not is_file_store(target):
        return None
    path = server_file(target)
    info = _read(path)
    if info is None or info.store != os.path.realpath(target):
        return None
    if info.host == socket.gethostname() and not _alive(info.pid):
        return None
    server = StoreServer(path, info)
    owner = server.owner()
    if owner is None or (owner.pid, owner.store) != (info.pid, info.store):
        return None
    return server


class StoreServer:
    """The ``tripwire serve`` process named by a server file."""

    def __init__(self, path: Path, info: ServerFile) -> None:
        self.path = path
        self.info = info

    def __str__(self) -> str:
        return f"tripwire serve (pid {self.info.pid}) at {self.info.url}"

    def _client(self, timeout: httpx.Timeout) -> httpx.Client:
        return httpx.Client(
            base_url=self.info.url,
            headers={"Authorization": f"Bearer {self.info.token}"},
            timeout=timeout,
        )

    def owner(self) -> StoreOwner | None:
        """Which process owns which store, as the server says; None when nothing listens at
        its URL."""
        with self._client(PROBE_TIMEOUT) as client:
            try:
                response = client.get(f"{ADMIN}/store")
            except httpx.ConnectError:
                return None
            except httpx.TransportError as exc:
                raise TripwireError(
                    f"{self} holds {self.info.store} but does not answer: "
                    f"{type(exc).__name__}: {exc}"
                ) from exc
        return StoreOwner.model_validate(self._json(response, "store"))

    def perform(self, task: Task[Request, Result], request: Request) -> Result:
        """Have the server do ``task`` on its store, and return what it found."""
        with self._client(TASK_TIMEOUT) as client:
            try:
                response = client.post(
                    f"{ADMIN}/{task.name}", content=request.model_dump_json(), headers=_JSON
                )
            except httpx.TransportError as exc:
                raise TripwireError(
                    f"lost {self} while it worked: {type(exc).__name__}: {exc} (see its log; "
                    "running the command again is safe)"
                ) from exc
        return task.result.model_validate(self._json(response, task.name))

    def _json(self, response: httpx.Response, name: str) -> Any:
        """The body of a successful answer; any other answer as an error a user can act on."""
        if response.is_success:
            return response.json()
        if response.status_code == 401:
            raise TripwireError(
                f"{self} refused the admin token in {self.path}: it does not match the token "
                f"the server started with (was the file edited or replaced?); restarting the "
                "server writes the file again"
            )
        try:
            detail = response.json().get("detail")
        except (ValueError, AttributeError):
            detail = None
        if response.status_code == 422 and isinstance(detail, str):
            raise TripwireError(detail)  # the task's own error, as the command would print it
        if response.status_code == 404:
            raise TripwireError(
                f"{self} has no {ADMIN}/{name}: it is tripwire {self.info.version}, this is "
                f"{__version__}; stop the server to run the command on the store directly"
            )
        raise TripwireError(
            f"{self} answered HTTP {response.status_code} to {ADMIN}/{name}: "
            f"{detail or response.text[:500]} (its log says more)"
        )

    def refusal(self, command: str) -> TripwireError:
        """The error for a command that cannot send its work to the server."""
        return TripwireError(
            f"{self.info.store} is owned by the running {self}, and `{command}` cannot go "
            f"through it: stop the server first (kill {self.info.pid}), or run the command on "
            "a copy of the store with --store COPY"
        )


_JSON = {"Content-Type": "application/json"}
