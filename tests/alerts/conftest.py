"""Real receivers on 127.0.0.1 for the delivery tests: SMTP and a Prometheus Alertmanager (the
HTTP receiver, which the end-to-end tests use too, is in tests/conftest.py)."""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email import message_from_bytes, policy
from email.message import EmailMessage
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
