"""The digest reaches people through text channels; paging channels refuse it."""

from __future__ import annotations

from typing import Any

import pytest

from tripwire.alerts.channels import DeliveryError, send_digest
from tripwire.config import EmailChannel, PagerDutyChannel, SlackChannel, WebhookChannel

MARKDOWN = "# digest\n\n| feature | metric |\n|---|---|\n| session_jitter | psi |\n"
HTML = "<h1>digest</h1><table><tr><td>session_jitter</td></tr></table>"


def test_slack_and_webhook_receive_the_digest(
    http_receiver: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DIGEST_SLACK_URL", f"{http_receiver.url}/slack")
    send_digest(SlackChannel(type="slack", webhook_url_env="DIGEST_SLACK_URL"), "s", MARKDOWN, HTML)
    send_digest(
        WebhookChannel(type="webhook", url=f"{http_receiver.url}/hook"), "s", MARKDOWN, HTML
    )
    (slack,) = http_receiver.to("/slack")
    (hook,) = http_receiver.to("/hook")
    assert slack.body == {"text": MARKDOWN}
    assert hook.body == {"subject": "s", "markdown": MARKDOWN, "html": HTML}


def test_email_carries_text_and_html(smtp_receiver: Any) -> None:
    channel = EmailChannel(
        type="email",
        to=["ds@example.com"],
        smtp_host=smtp_receiver.host,
        smtp_port=smtp_receiver.port,
    )
    send_digest(channel, "weekly digest", MARKDOWN, HTML)
    (mail,) = smtp_receiver.messages
    assert mail["Subject"] == "weekly digest"
    plain = mail.get_body(preferencelist=("plain",))
    html = mail.get_body(preferencelist=("html",))
    assert plain is not None and "session_jitter" in plain.get_content()
    assert html is not None and "<table>" in html.get_content()


def test_a_pager_refuses_a_digest() -> None:
    channel = PagerDutyChannel(type="pagerduty", routing_key_env="UNUSED")
    with pytest.raises(DeliveryError, match="does not take digests"):
        send_digest(channel, "s", MARKDOWN, HTML)
