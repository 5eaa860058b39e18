"""The dashboard over a store on this machine, for ``tripwire demo --serve``.

It is the app ``tripwire serve`` builds, without the scheduler running (the demo has checked
every window already) and with tokens made up for the session: the read token is printed for
the browser, the ingest token is not, so nothing can be sent in.
"""

from __future__ import annotations

import errno
import secrets
import signal
import socket
import threading
from dataclasses import dataclass
from typing import TYPE_CHECKING

from tripwire.config import ModelConfig
from tripwire.monitor import Monitor
from tripwire.scheduler import Scheduler
from tripwire.store import Store

if TYPE_CHECKING:
    import uvicorn

__all__ = ["LocalDashboard", "local_dashboard"]


@dataclass
class LocalDashboard:
    """A bound, not yet running, dashboard server."""

    server: uvicorn.Server
    sock: socket.socket
    token: str

    @property
    def url(self) -> str:
        host, port = self.sock.getsockname()[:2]
        return f"http://{host}:{port}/dashboard"

    @property
    def sign_in_url(self) -> str:
        """The address that signs a browser in (once; the page drops the token from it)."""
        return f"{self.url}?token={self.token}"

    def run(self) -> None:
        """Serve until :meth:`stop`, Ctrl-C or SIGTERM."""
        with self.sock:
            self.server.run(sockets=[self.sock])

    def run_until_stopped(self) -> None:
        """:meth:`run` in a command: Ctrl-C and SIGTERM end it quietly."""
        # uvicorn stops gracefully on either signal, then raises it again for the handler it
        # found: a no-op one for SIGTERM, and KeyboardInterrupt caught for Ctrl-C.
        previous = signal.signal(signal.SIGTERM, lambda *_: None)
        try:
            self.run()
        except KeyboardInterrupt:
            pass
        finally:
            signal.signal(signal.SIGTERM, previous)

    def stop(self) -> None:
        self.server.should_exit = True


def _bind(host: str, port: int) -> socket.socket:
    """A listening socket on ``port``, or on any free port when that one is taken."""
    for candidate in (port, 0):
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, candidate))
        except OSError as exc:
            sock.close()
            if exc.errno != errno.EADDRINUSE or candidate == 0:
                raise
            continue
        sock.listen(128)
        return sock
    raise AssertionError("unreachable")


def local_dashboard(
    config: ModelConfig,
    store: Store,
    monitor: Monitor | None = None,
    host: str = "127.0.0.1",
    port: int = 8080,
) -> LocalDashboard:
    """The dashboard and read API over ``store`` for ``config``'s model, bound to ``host``:
    ``port`` (or a free port when it is taken). The feature pages' reference histograms are the
    one the job kept in the store; ``monitor``, the fitted one, stands in for a store filled
    before the job kept it."""
    import uvicorn

    from tripwire.server import create_app

    token = secrets.token_urlsafe(24)
    scheduler = (
        Scheduler({config.name: monitor}, store, threading.Lock()) if monitor is not None else None
    )
    app = create_app(
        {config.name: config}, store, secrets.token_urlsafe(32), token, scheduler=scheduler
    )
    # lifespan off: the app's lifespan only starts the scheduler, which must not run here.
    server = uvicorn.Server(
        uvicorn.Config(app, host=host, port=port, log_level="warning", lifespan="off")
    )
    return LocalDashboard(server, _bind(host, port), token)
