"""Real receivers on 127.0.0.1 for the delivery tests: HTTP, SMTP and a Prometheus Alertmanager."""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email import message_from_bytes, policy
from email.message import EmailMessage
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

from tripwire.alerts.message import AlertMessage
from tripwire.config import Runbook

LOCALHOST = "127.0.0.1"


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as probe:
        probe.bind((LOCALHOST, 0))
        port: int = probe.getsockname()[1]
        return port


# --- messages ------------------------------------------------------------------------------


MakeMessage = Callable[..., AlertMessage]


@pytest.fixture
def make_message() -> MakeMessage:
    """Build an :class:`AlertMessage` with realistic defaults; keywords override fields."""

    # One clock reading per test, so messages built in one test compare equal.
    opened = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=10)

    def make(**overrides: Any) -> AlertMessage:
        fields: dict[str, Any] = {
            "event": "firing",
            "dedup_key": "fraud/amount-drift/amount/all/2024-05-01T00:00",
            "model": "fraud",
            "rule": "amount-drift",
            "severity": "page",
            "metric": "psi",
            "feature": "amount",
            "segment": "all",
            "value": 0.31,
            "threshold": 0.25,
            "direction": "above",
            "evidence_start": opened - timedelta(hours=2),
            "evidence_end": opened,
            "opened_at": opened,
            "runbook": Runbook(
                what_it_means="Transaction amounts shifted away from the training data.",
                what_to_check="Upstream currency conversion and the amount dashboard.",
                who_owns_the_fix="Payments data team (#payments-data).",
            ),
            "owner": "payments-data",
            "route": "oncall",
        }
        fields.update(overrides)
        return AlertMessage(**fields)

    return make


@pytest.fixture
def resolve() -> Callable[[AlertMessage], AlertMessage]:
    """Turn a firing message into its incident's resolve event, resolved a minute ago."""

    def resolved(message: AlertMessage) -> AlertMessage:
        moment = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=1)
        return message.model_copy(update={"event": "resolved", "resolved_at": moment})

    return resolved


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


# --- SMTP ----------------------------------------------------------------------------------


@dataclass
class SmtpReceiver:
    """An SMTP server collecting the messages it accepts; logins must use these credentials."""

    host: str
    port: int
    username: str = "tripwire"
    password: str = "smtp-password-never-logged"
    messages: list[EmailMessage] = field(default_factory=list)
    recipients: list[list[str]] = field(default_factory=list)

    # aiosmtpd calls its hooks handle_<SMTP command>, hence the name.
    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802
        parsed = message_from_bytes(envelope.content, policy=policy.default)
        assert isinstance(parsed, EmailMessage)
        self.messages.append(parsed)
        self.recipients.append(list(envelope.rcpt_tos))
        return "250 Message accepted for delivery"

    def authenticate(
        self, server: Any, session: Any, envelope: Any, mechanism: str, auth_data: Any
    ) -> AuthResult:
        expected = (self.username.encode(), self.password.encode())
        ok = isinstance(auth_data, LoginPassword) and (auth_data.login, auth_data.password) == (
            expected
        )
        # handled=False lets aiosmtpd answer a failure with 535 itself.
        return AuthResult(success=ok, handled=False)


@pytest.fixture
def smtp_receiver() -> Iterator[SmtpReceiver]:
    """An aiosmtpd server on 127.0.0.1 that accepts LOGIN/PLAIN without TLS (tests only)."""
    receiver = SmtpReceiver(host=LOCALHOST, port=free_port())
    controller = Controller(
        receiver,
        hostname=LOCALHOST,
        port=receiver.port,
        authenticator=receiver.authenticate,
        auth_require_tls=False,
    )
    controller.start()
    try:
        yield receiver
    finally:
        controller.stop()


# --- Prometheus Alertmanager ---------------------------------------------------------------

_ALERTMANAGER_CONFIG = """\
route:
  receiver: "null"
receivers:
  - name: "null"
"""


def _alertmanager_binary() -> str | None:
    found = shutil.which("prometheus-alertmanager")
    if found is None and Path("/usr/bin/prometheus-alertmanager").exists():
        found = "/usr/bin/prometheus-alertmanager"
    return found


def _wait_ready(
    url: str, process: subprocess.Popen[bytes], log: Path, timeout: float = 30.0
) -> None:
    """Poll ``/-/ready`` until it answers 200; fail if the process dies or time runs out."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            tail = log.read_text(errors="replace")[-2000:]
            pytest.fail(f"alertmanager exited with code {process.returncode}:\n{tail}")
        try:
            with urllib.request.urlopen(f"{url}/-/ready", timeout=1) as response:
                if response.status == 200:
                    return
        except (urllib.error.URLError, OSError):
            pass
        time.sleep(0.05)
    pytest.fail("alertmanager did not become ready")


@pytest.fixture(scope="session")
def alertmanager(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real Alertmanager on 127.0.0.1, clustering off; yields its base URL."""
    binary = _alertmanager_binary()
    if binary is None:
        pytest.skip("prometheus-alertmanager is not installed (.ci/run installs it)")
    home = tmp_path_factory.mktemp("alertmanager")
    config = home / "alertmanager.yml"
    config.write_text(_ALERTMANAGER_CONFIG)
    port = free_port()
    url = f"http://{LOCALHOST}:{port}"
    log_path = home / "alertmanager.log"
    log = log_path.open("wb")
    process = subprocess.Popen(
        [
            binary,
            f"--config.file={config}",
            f"--storage.path={home / 'data'}",
            f"--web.listen-address={LOCALHOST}:{port}",
            "--cluster.listen-address=",
        ],
        stdout=subprocess.DEVNULL,
        stderr=log,
    )
    try:
        _wait_ready(url, process, log_path)
        yield url
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        log.close()
