"""Deliver an :class:`AlertMessage` to one configured channel, in that channel's wire format.

:func:`send` is the only entry point; it picks one small function per channel type. Every
failure (a missing environment variable, a refused connection, an HTTP status of 300 or more,
an SMTP error) becomes a :class:`DeliveryError` whose text names the channel type and what
went wrong. Secrets (webhook URLs, routing keys, tokens, passwords) are read from the
environment at send time and are scrubbed from every error text, so callers may store and log
those texts freely.
"""

from __future__ import annotations

import os
import smtplib
import ssl
import sys
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from typing import Any, assert_never

import httpx

from tripwire.alerts.message import AlertMessage
from tripwire.config import (
    AlertmanagerChannel,
    Channel,
    ConsoleChannel,
    EmailChannel,
    PagerDutyChannel,
    Runbook,
    SlackChannel,
    WebhookChannel,
)

__all__ = ["DeliveryError", "send"]

# PagerDuty has three urgencies we use; tripwire's severities map onto them one to one.
_PAGERDUTY_SEVERITY = {"page": "critical", "ticket": "warning", "digest": "info"}

# The runbook's three sections, with the headings every channel shows them under.
_RUNBOOK_SECTIONS = (
    ("what_it_means", "What it means"),
    ("what_to_check", "What to check"),
    ("who_owns_the_fix", "Who owns the fix"),
)

# An error response's body helps diagnose a rejection (PagerDuty explains a bad payload there),
# but a receiver may answer with a whole HTML page: keep only its start.
_MAX_ERROR_BODY = 300

# Slack rejects header blocks over 150 characters and section texts over 3000.
_SLACK_HEADER_LIMIT = 150
_SLACK_TEXT_LIMIT = 3000


class DeliveryError(Exception):
    """A channel could not deliver a message; the text never contains a secret."""


def send(channel: Channel, message: AlertMessage, timeout: float = 10.0) -> None:
    """Deliver ``message`` to ``channel``, raising :class:`DeliveryError` on any failure.

    ``timeout`` bounds each network operation in seconds.
    """
    match channel:
        case SlackChannel():
            _send_slack(channel, message, timeout)
        case PagerDutyChannel():
            _send_pagerduty(channel, message, timeout)
        case WebhookChannel():
            _send_webhook(channel, message, timeout)
        case EmailChannel():
            _send_email(channel, message, timeout)
        case AlertmanagerChannel():
            _send_alertmanager(channel, message, timeout)
        case ConsoleChannel():
            _send_console(message)
        case _:
            assert_never(channel)


def send_digest(
    channel: Channel, subject: str, markdown: str, html: str, timeout: float = 10.0
) -> None:
    """Deliver a digest (a summary, not an incident) to a channel that carries text."""
    match channel:
        case SlackChannel():
            url = _secret("slack", channel.webhook_url_env)
            _post_json("slack", url, {"text": markdown}, timeout, secrets=(url,))
        case WebhookChannel():
            headers, secrets = _bearer(channel)
            body = {"subject": subject, "markdown": markdown, "html": html}
            _post_json("webhook", channel.url, body, timeout, headers=headers, secrets=secrets)
        case EmailChannel():
            mail = EmailMessage()
            mail["Subject"], mail["From"], mail["To"] = (
                subject,
                channel.sender,
                ", ".join(channel.to),
            )
            mail.set_content(markdown)
            mail.add_alternative(html, subtype="html")
            _deliver_email(channel, mail, timeout)
        case ConsoleChannel():
            print(markdown, file=sys.stderr)
        case PagerDutyChannel() | AlertmanagerChannel():
            raise DeliveryError(
                f"{channel.type}: pages incidents and does not take digests; route digests to "
                "slack, email, webhook or console"
            )
        case _:
            assert_never(channel)


# --- secrets -------------------------------------------------------------------------------


def _secret(kind: str, variable: str) -> str:
    """The value of environment variable ``variable``; its absence is a delivery failure."""
    value = os.environ.get(variable)
    if not value:
        raise DeliveryError(f"{kind}: environment variable {variable} is not set")
    return value


def _redact(text: str, secrets: tuple[str, ...]) -> str:
    """``text`` with every secret replaced, so error texts can be stored and logged."""
    for secret in secrets:
        if secret:
            text = text.replace(secret, "***")
    return text


# --- HTTP ----------------------------------------------------------------------------------


def _post_json(
    kind: str,
    url: str,
    body: Any,
    timeout: float,
    *,
    headers: Mapping[str, str] | None = None,
    secrets: tuple[str, ...] = (),
) -> None:
    """POST ``body`` as JSON; a transport error or a status of 300 or more raises.

    ``secrets`` are scrubbed from any error text: the URL itself may be one (Slack).
    """
    try:
        with httpx.Client(timeout=timeout) as client:
            response = client.post(url, json=body, headers=dict(headers or {}))
    except httpx.HTTPError as exc:
        reason = _redact(f"{type(exc).__name__}: {exc}", (*secrets, url))
        raise DeliveryError(f"{kind}: request failed ({reason})") from None
    if response.status_code >= 300:
        detail = _redact(response.text[:_MAX_ERROR_BODY].strip(), secrets)
        suffix = f": {detail}" if detail else ""
        raise DeliveryError(f"{kind}: receiver answered HTTP {response.status_code}{suffix}")


# --- formatting shared by several channels -------------------------------------------------


def _format_number(value: float | None) -> str:
    """A value or threshold as people read it; ``—`` when there is none."""
    return "—" if value is None else f"{value:.4g}"


def _rfc3339(moment: datetime) -> str:
    """An RFC 3339 timestamp; naive datetimes are taken to be UTC, as tripwire stores them."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _facts(message: AlertMessage) -> list[tuple[str, str]]:
    """The incident's facts as (label, text) pairs, in the order every channel shows them."""
    facts = [
        ("Rule", message.rule),
        ("Model", message.model),
        ("Severity", message.severity),
        ("Metric", message.metric),
        ("Feature", message.feature or "—"),
        ("Segment", message.segment),
        ("Value", _format_number(message.value)),
        ("Threshold", f"{message.direction} {_format_number(message.threshold)}"),
        (
            "Evidence window",
            f"{_rfc3339(message.evidence_start)} to {_rfc3339(message.evidence_end)}",
        ),
        ("Opened", _rfc3339(message.opened_at)),
    ]
    if message.raised_at is not None:
        facts.append(("Raised", _rfc3339(message.raised_at)))
    if message.resolved_at is not None:
        facts.append(("Resolved", _rfc3339(message.resolved_at)))
    if message.owner:
        facts.append(("Owner", message.owner))
    return facts


def _runbook_sections(runbook: Runbook) -> Iterator[tuple[str, str]]:
    """The runbook's non-empty sections as (heading, text) pairs."""
    for field, heading in _RUNBOOK_SECTIONS:
        text: str = getattr(runbook, field)
        if text.strip():
            yield heading, text.strip()


def _plain_text(message: AlertMessage) -> str:
    """Every fact and the runbook as plain text: the e-mail body and the console output."""
    lines = [message.summary, ""]
    lines += [f"{label}: {text}" for label, text in _facts(message)]
    lines += [f"Dedup key: {message.dedup_key}", f"Route: {message.route}"]
    for heading, text in _runbook_sections(message.runbook):
        lines += ["", f"{heading}:", text]
    return "\n".join(lines) + "\n"


# --- Slack ---------------------------------------------------------------------------------


def _truncate(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _slack_blocks(message: AlertMessage) -> list[dict[str, Any]]:
    """Block Kit: the summary as a header, the facts as fields, one section per runbook part."""
    # A section takes at most ten fields, so the facts go in groups of ten.
    fields = [{"type": "mrkdwn", "text": f"*{label}*\n{text}"} for label, text in _facts(message)]
    blocks: list[dict[str, Any]] = [
        {
            "type": "header",
            "text": {
                "type": "plain_text",
                "text": _truncate(message.summary, _SLACK_HEADER_LIMIT),
            },
        },
    ]
    blocks += [{"type": "section", "fields": fields[i : i + 10]} for i in range(0, len(fields), 10)]
    for heading, text in _runbook_sections(message.runbook):
        section = _truncate(f"*{heading}*\n{text}", _SLACK_TEXT_LIMIT)
        blocks.append({"type": "section", "text": {"type": "mrkdwn", "text": section}})
    return blocks


def _send_slack(channel: SlackChannel, message: AlertMessage, timeout: float) -> None:
    """Post to a Slack incoming webhook; the webhook URL is the secret."""
    url = _secret("slack", channel.webhook_url_env)
    body = {"text": message.summary, "blocks": _slack_blocks(message)}
    _post_json("slack", url, body, timeout, secrets=(url,))


# --- PagerDuty -----------------------------------------------------------------------------


def _pagerduty_event(routing_key: str, message: AlertMessage) -> dict[str, Any]:
    """An Events API v2 event: a trigger with the details, or a bare resolve."""
    if message.event == "resolved":
        return {
            "routing_key": routing_key,
            "event_action": "resolve",
            "dedup_key": message.dedup_key,
        }
    return {
        "routing_key": routing_key,
        "event_action": "trigger",
        "dedup_key": message.dedup_key,
        "payload": {
            "summary": _truncate(message.summary, 1024),  # PagerDuty's limit
            "source": message.model,
            "severity": _PAGERDUTY_SEVERITY[message.severity],
            "custom_details": message.model_dump(mode="json"),
        },
    }


def _send_pagerduty(channel: PagerDutyChannel, message: AlertMessage, timeout: float) -> None:
    """Trigger or resolve a PagerDuty incident keyed by the message's dedup key."""
    routing_key = _secret("pagerduty", channel.routing_key_env)
    event = _pagerduty_event(routing_key, message)
    _post_json("pagerduty", channel.url, event, timeout, secrets=(routing_key,))


# --- generic webhook -----------------------------------------------------------------------


def _bearer(channel: WebhookChannel) -> tuple[dict[str, str], tuple[str, ...]]:
    """The Authorization header when a token is configured, and the secret to redact."""
    if channel.token_env is None:
        return {}, ()
    token = _secret("webhook", channel.token_env)
    return {"Authorization": f"Bearer {token}"}, (token,)


def _send_webhook(channel: WebhookChannel, message: AlertMessage, timeout: float) -> None:
    """Post the whole message as JSON, with a bearer token when one is configured."""
    headers, secrets = _bearer(channel)
    body = {**message.model_dump(mode="json"), "summary": message.summary}
    _post_json("webhook", channel.url, body, timeout, headers=headers, secrets=secrets)


# --- e-mail --------------------------------------------------------------------------------


def _email(channel: EmailChannel, message: AlertMessage) -> EmailMessage:
    """The e-mail: the summary as subject, every fact and the runbook as a plain-text body."""
    mail = EmailMessage()
    mail["Subject"] = message.summary
    mail["From"] = channel.sender
    mail["To"] = ", ".join(channel.to)
    mail["Date"] = formatdate(localtime=False)
    mail["Message-ID"] = make_msgid(domain=channel.sender.rpartition("@")[2] or None)
    mail.set_content(_plain_text(message))
    return mail


def _smtp_credentials(channel: EmailChannel) -> tuple[str, str] | None:
    """(username, password) from the environment, or None when the channel needs no login."""
    if channel.username_env is None and channel.password_env is None:
        return None
    if channel.username_env is None or channel.password_env is None:
        raise DeliveryError("email: set both username_env and password_env to log in")
    return _secret("email", channel.username_env), _secret("email", channel.password_env)


def _send_email(channel: EmailChannel, message: AlertMessage, timeout: float) -> None:
    """Send over SMTP, upgrading with STARTTLS and logging in when configured."""
    _deliver_email(channel, _email(channel, message), timeout)


def _deliver_email(channel: EmailChannel, mail: EmailMessage, timeout: float) -> None:
    credentials = _smtp_credentials(channel)
    try:
        with smtplib.SMTP(channel.smtp_host, channel.smtp_port, timeout=timeout) as smtp:
            if channel.starttls:
                smtp.starttls(context=ssl.create_default_context())
            if credentials is not None:
                smtp.login(*credentials)
            smtp.send_message(mail)
    except (smtplib.SMTPException, OSError) as exc:
        reason = _redact(f"{type(exc).__name__}: {exc}", credentials or ())
        where = f"{channel.smtp_host}:{channel.smtp_port}"
        raise DeliveryError(f"email: sending via {where} failed ({reason})") from None


# --- Prometheus Alertmanager ---------------------------------------------------------------


def _non_empty(values: Mapping[str, str | None]) -> dict[str, str]:
    """``values`` without the empty ones: Alertmanager treats an empty label as absent."""
    return {key: value for key, value in values.items() if value}


def _alertmanager_alert(message: AlertMessage) -> dict[str, Any]:
    """One alert in the shape of Alertmanager's ``POST /api/v2/alerts``."""
    runbook = message.runbook
    alert: dict[str, Any] = {
        "labels": _non_empty(
            {
                "alertname": message.rule,
                "model": message.model,
                "severity": message.severity,
                "metric": message.metric,
                "feature": message.feature,
                "segment": message.segment,
            }
        ),
        "annotations": _non_empty(
            {
                "summary": message.summary,
                "what_it_means": runbook.what_it_means,
                "what_to_check": runbook.what_to_check,
                "who_owns_the_fix": runbook.who_owns_the_fix,
                "value": None if message.value is None else repr(message.value),
                "threshold": None if message.threshold is None else repr(message.threshold),
            }
        ),
        "startsAt": _rfc3339(message.opened_at),
    }
    if message.event == "resolved":
        # An endsAt in the past is how Alertmanager learns an alert resolved.
        alert["endsAt"] = _rfc3339(message.resolved_at or datetime.now(UTC))
    elif message.expires_at is not None:
        # Without endsAt, Alertmanager resolves an alert after its resolve_timeout (5 minutes)
        # unless it is posted again; the job re-posts open incidents before this passes.
        alert["endsAt"] = _rfc3339(message.expires_at)
    return alert


def _send_alertmanager(channel: AlertmanagerChannel, message: AlertMessage, timeout: float) -> None:
    """Post the alert to Alertmanager's v2 API."""
    url = channel.url.rstrip("/") + "/api/v2/alerts"
    _post_json("alertmanager", url, [_alertmanager_alert(message)], timeout)


# --- console -------------------------------------------------------------------------------


def _send_console(message: AlertMessage) -> None:
    """Print the summary, facts and runbook to stderr, keeping stdout for command output."""
    print(_plain_text(message), file=sys.stderr, flush=True)
