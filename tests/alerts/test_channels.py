"""Each channel's wire format, checked against real receivers on 127.0.0.1."""

from __future__ import annotations

import datetime as dt
import json
import socket
import urllib.parse
import urllib.request
from collections.abc import Callable
from typing import Any

import pytest

from tripwire.alerts.channels import DeliveryError, send
from tripwire.alerts.message import AlertMessage
from tripwire.config import (
    AlertmanagerChannel,
    ConsoleChannel,
    EmailChannel,
    PagerDutyChannel,
    SlackChannel,
    WebhookChannel,
)

SECRET = "s3cret-value-that-must-never-leak"

Make = Callable[..., AlertMessage]
Resolve = Callable[[AlertMessage], AlertMessage]


def _runbook_texts(message: AlertMessage) -> list[str]:
    runbook = message.runbook
    return [runbook.what_it_means, runbook.what_to_check, runbook.who_owns_the_fix]


# --- Slack ---------------------------------------------------------------------------------


def test_slack_posts_summary_facts_and_runbook(
    http_receiver: Any, make_message: Make, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TW_TEST_SLACK_URL", f"{http_receiver.url}/services/T0/B0/{SECRET}")
    message = make_message(raised_at=dt.datetime(2024, 5, 3, 9, 30))

    send(SlackChannel(type="slack", webhook_url_env="TW_TEST_SLACK_URL"), message)

    (request,) = http_receiver.to(f"/services/T0/B0/{SECRET}")
    body = request.body
    assert set(body) == {"text", "blocks"}
    assert body["text"] == message.summary
    header, *sections = body["blocks"]
    assert header == {"type": "header", "text": {"type": "plain_text", "text": message.summary}}
    fields = [field["text"] for section in sections for field in section.get("fields", [])]
    runbook = [section for section in sections if "text" in section]
    for expected in (
        "*Rule*\namount-drift",
        "*Feature*\namount",
        "*Segment*\nall",
        "*Value*\n0.31",
        "*Threshold*\nabove 0.25",
        "*Raised*\n2024-05-03T09:30:00Z",  # naive times are UTC, as the store keeps them
    ):
        assert expected in fields
    window = next(field for field in fields if field.startswith("*Evidence window*"))
    assert message.evidence_start.strftime("%Y-%m-%dT%H:%M:%S") in window
    assert message.evidence_end.strftime("%Y-%m-%dT%H:%M:%S") in window
    assert [block["text"]["text"] for block in runbook] == [
        f"*What it means*\n{message.runbook.what_it_means}",
        f"*What to check*\n{message.runbook.what_to_check}",
        f"*Who owns the fix*\n{message.runbook.who_owns_the_fix}",
    ]


def test_slack_failure_names_status_but_not_the_webhook_url(
    http_receiver: Any, make_message: Make, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = f"/services/T0/B0/{SECRET}"
    http_receiver.answer(path, 500)
    monkeypatch.setenv("TW_TEST_SLACK_URL", http_receiver.url + path)

    with pytest.raises(DeliveryError) as caught:
        send(SlackChannel(type="slack", webhook_url_env="TW_TEST_SLACK_URL"), make_message())

    assert "slack" in str(caught.value)
    assert "500" in str(caught.value)
    assert SECRET not in str(caught.value)


# --- PagerDuty -----------------------------------------------------------------------------


def test_pagerduty_trigger_then_resolve_with_the_same_dedup_key(
    http_receiver: Any, make_message: Make, resolve: Resolve, monkeypatch: pytest.MonkeyPatch
) -> None:
    http_receiver.answer("/v2/enqueue", 202)
    monkeypatch.setenv("TW_TEST_PD_KEY", SECRET)
    channel = PagerDutyChannel(
        type="pagerduty", routing_key_env="TW_TEST_PD_KEY", url=f"{http_receiver.url}/v2/enqueue"
    )
    message = make_message()

    send(channel, message)
    send(channel, resolve(message))

    trigger, resolve_event = (request.body for request in http_receiver.to("/v2/enqueue"))
    assert trigger == {
        "routing_key": SECRET,
        "event_action": "trigger",
        "dedup_key": message.dedup_key,
        "payload": {
            "summary": message.summary,
            "source": "fraud",
            "severity": "critical",
            "custom_details": message.model_dump(mode="json"),
        },
    }
    assert trigger["payload"]["custom_details"]["runbook"] == message.runbook.model_dump()
    assert resolve_event == {
        "routing_key": SECRET,
        "event_action": "resolve",
        "dedup_key": message.dedup_key,
    }


@pytest.mark.parametrize(
    ("severity", "expected"), [("page", "critical"), ("ticket", "warning"), ("digest", "info")]
)
def test_pagerduty_severity(
    http_receiver: Any,
    make_message: Make,
    monkeypatch: pytest.MonkeyPatch,
    severity: str,
    expected: str,
) -> None:
    http_receiver.answer("/v2/enqueue", 202)
    monkeypatch.setenv("TW_TEST_PD_KEY", SECRET)
    channel = PagerDutyChannel(
        type="pagerduty", routing_key_env="TW_TEST_PD_KEY", url=f"{http_receiver.url}/v2/enqueue"
    )

    send(channel, make_message(severity=severity))

    (request,) = http_receiver.to("/v2/enqueue")
    assert request.body["payload"]["severity"] == expected


# --- generic webhook -----------------------------------------------------------------------


def test_webhook_posts_the_message_with_a_bearer_token(
    http_receiver: Any, make_message: Make, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TW_TEST_TOKEN", SECRET)
    message = make_message()

    send(
        WebhookChannel(type="webhook", url=f"{http_receiver.url}/hook", token_env="TW_TEST_TOKEN"),
        message,
    )

    (request,) = http_receiver.to("/hook")
    assert request.headers["Authorization"] == f"Bearer {SECRET}"
    assert request.body == {**message.model_dump(mode="json"), "summary": message.summary}


def test_webhook_without_token_sends_no_authorization(
    http_receiver: Any, make_message: Make
) -> None:
    send(WebhookChannel(type="webhook", url=f"{http_receiver.url}/hook"), make_message())

    (request,) = http_receiver.to("/hook")
    assert "Authorization" not in request.headers


def test_webhook_error_text_never_contains_the_token(
    http_receiver: Any, make_message: Make, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The receiver's error body echoes the request headers, bearer token included.
    http_receiver.answer("/hook", 503)
    monkeypatch.setenv("TW_TEST_TOKEN", SECRET)
    channel = WebhookChannel(
        type="webhook", url=f"{http_receiver.url}/hook", token_env="TW_TEST_TOKEN"
    )

    with pytest.raises(DeliveryError) as caught:
        send(channel, make_message())

    assert "webhook" in str(caught.value)
    assert "503" in str(caught.value)
    assert "Bearer ***" in str(caught.value)
    assert SECRET not in str(caught.value)


def test_unreachable_receiver_is_a_delivery_error(make_message: Make) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    # Nothing listens on the port once the probe is closed.
    channel = WebhookChannel(type="webhook", url=f"http://127.0.0.1:{port}/hook")

    with pytest.raises(DeliveryError, match="webhook: request failed"):
        send(channel, make_message(), timeout=2)


@pytest.mark.parametrize(
    "channel",
    [
        SlackChannel(type="slack", webhook_url_env="TW_TEST_UNSET"),
        PagerDutyChannel(type="pagerduty", routing_key_env="TW_TEST_UNSET"),
        WebhookChannel(type="webhook", url="http://127.0.0.1:9/", token_env="TW_TEST_UNSET"),
        EmailChannel(
            type="email", to=["a@example.org"], username_env="TW_TEST_UNSET", password_env="X"
        ),
    ],
    ids=lambda channel: channel.type,
)
def test_missing_environment_variable_is_named(
    channel: Any, make_message: Make, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("TW_TEST_UNSET", raising=False)

    with pytest.raises(DeliveryError) as caught:
        send(channel, make_message())

    assert str(caught.value) == f"{channel.type}: environment variable TW_TEST_UNSET is not set"


# --- Alertmanager wire format --------------------------------------------------------------


def test_alertmanager_wire_format(http_receiver: Any, make_message: Make, resolve: Resolve) -> None:
    channel = AlertmanagerChannel(type="alertmanager", url=f"{http_receiver.url}/")
    message = make_message(feature=None, metric="prediction_mean")
    resolution = resolve(message)

    send(channel, message)
    send(channel, resolution)

    firing, resolved = (request.body for request in http_receiver.to("/api/v2/alerts"))
    expected = {
        "labels": {
            "alertname": "amount-drift",
            "model": "fraud",
            "severity": "page",
            "metric": "prediction_mean",
            "segment": "all",
        },
        "annotations": {
            "summary": message.summary,
            "what_it_means": message.runbook.what_it_means,
            "what_to_check": message.runbook.what_to_check,
            "who_owns_the_fix": message.runbook.who_owns_the_fix,
            "value": "0.31",
            "threshold": "0.25",
        },
        "startsAt": message.opened_at.isoformat().replace("+00:00", "Z"),
    }
    assert firing == [expected]
    (resolved_alert,) = resolved
    assert resolved_alert["labels"] == expected["labels"]
    assert resolved_alert["startsAt"] == expected["startsAt"]
    assert resolution.resolved_at is not None
    assert resolved_alert["endsAt"] == resolution.resolved_at.isoformat().replace("+00:00", "Z")


# --- a real Alertmanager -------------------------------------------------------------------


def _active_alerts(base_url: str, rule: str) -> list[dict[str, Any]]:
    query = urllib.parse.urlencode({"filter": f'alertname="{rule}"', "active": "true"})
    with urllib.request.urlopen(f"{base_url}/api/v2/alerts?{query}", timeout=5) as response:
        alerts: list[dict[str, Any]] = json.load(response)
    return alerts


def test_real_alertmanager_fires_and_resolves(
    alertmanager: str, make_message: Make, resolve: Resolve
) -> None:
    channel = AlertmanagerChannel(type="alertmanager", url=alertmanager)
    message = make_message(rule="real-alertmanager-roundtrip")

    send(channel, message)
    (alert,) = _active_alerts(alertmanager, message.rule)
    assert alert["labels"] == {
        "alertname": "real-alertmanager-roundtrip",
        "model": "fraud",
        "severity": "page",
        "metric": "psi",
        "feature": "amount",
        "segment": "all",
    }
    assert alert["annotations"]["what_to_check"] == message.runbook.what_to_check
    assert alert["status"]["state"] == "active"

    send(channel, resolve(message))
    assert _active_alerts(alertmanager, message.rule) == []


# --- e-mail --------------------------------------------------------------------------------


def test_email_subject_body_and_login(
    smtp_receiver: Any, make_message: Make, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TW_TEST_SMTP_USER", smtp_receiver.username)
    monkeypatch.setenv("TW_TEST_SMTP_PASSWORD", smtp_receiver.password)
    channel = EmailChannel(
        type="email",
        to=["oncall@example.org", "ml@example.org"],
        sender="tripwire@example.org",
        smtp_host=smtp_receiver.host,
        smtp_port=smtp_receiver.port,
        username_env="TW_TEST_SMTP_USER",
        password_env="TW_TEST_SMTP_PASSWORD",
    )
    message = make_message()

    send(channel, message)

    (mail,) = smtp_receiver.messages
    assert smtp_receiver.recipients == [["oncall@example.org", "ml@example.org"]]
    assert mail["Subject"] == message.summary
    assert mail["From"] == "tripwire@example.org"
    body = mail.get_content()
    for expected in (
        "Rule: amount-drift",
        "Feature: amount",
        "Segment: all",
        "Value: 0.31",
        "Threshold: above 0.25",
        "What it means:",
        "What to check:",
        "Who owns the fix:",
        *_runbook_texts(message),
    ):
        assert expected in body


def test_email_login_failure_hides_the_password(
    smtp_receiver: Any, make_message: Make, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TW_TEST_SMTP_USER", smtp_receiver.username)
    monkeypatch.setenv("TW_TEST_SMTP_PASSWORD", SECRET)
    channel = EmailChannel(
        type="email",
        to=["oncall@example.org"],
        smtp_host=smtp_receiver.host,
        smtp_port=smtp_receiver.port,
        username_env="TW_TEST_SMTP_USER",
        password_env="TW_TEST_SMTP_PASSWORD",
    )

    with pytest.raises(DeliveryError, match=r"^email: ") as caught:
        send(channel, make_message())

    assert SECRET not in str(caught.value)
    assert smtp_receiver.messages == []


# --- console -------------------------------------------------------------------------------


def test_console_prints_summary_and_runbook_to_stderr(
    make_message: Make, capsys: pytest.CaptureFixture[str]
) -> None:
    message = make_message()

    send(ConsoleChannel(type="console"), message)

    out, err = capsys.readouterr()
    assert out == ""
    assert message.summary in err
    for text in _runbook_texts(message):
        assert text in err
