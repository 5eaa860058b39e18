"""The collector as the demo runs it: ``tripwire serve``'s app in this process, on a free port of
127.0.0.1, with a token made up for the run, stopped when the demo ends."""

from __future__ import annotations

import secrets
import socket
import threading
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass

import uvicorn

from tripwire.config import ModelConfig
from tripwire.scheduler import Scheduler
from tripwire.server import create_app

STARTUP_TIMEOUT = 30.0  # seconds; a collector that takes longer is broken, not slow


@dataclass(frozen=True)
class Collector:
    """Where the running collector listens, and the bearer token its endpoints take."""

    url: str
    token: str

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}


@contextmanager
def collector(configs: Mapping[str, ModelConfig], scheduler: Scheduler) -> Iterator[Collector]:
    """Serve the collector for ``configs`` over the scheduler's store until the block ends.

    The app gets the scheduler, as ``tripwire serve`` does, so that the collector's writes and
    the scheduler's checks take the same lock on the store's connection.
    """
    token = secrets.token_urlsafe(32)
    app = create_app(configs, scheduler.store, token, token, scheduler=scheduler)
    # Port 0: the system picks a free port, so a demo never collides with a running service.
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.bind(("127.0.0.1", 0))
    host, port = listener.getsockname()
    server = uvicorn.Server(
        uvicorn.Config(app, log_level="warning", access_log=False, lifespan="on")
    )
    thread = threading.Thread(
        target=server.run, kwargs={"sockets": [listener]}, name="tripwire-demo-collector"
    )
    thread.start()
    try:
        deadline = time.monotonic() + STARTUP_TIMEOUT
        while not server.started:
            if not thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the demo's collector did not start")
            time.sleep(0.01)
        yield Collector(f"http://{host}:{port}", token)
    finally:
        server.should_exit = True
        thread.join()
        listener.close()
