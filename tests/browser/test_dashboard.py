"""Click through the dashboard on the demo's month: overview → model → feature → incident.

What a newcomer must be able to find there: the demo's incidents, their runbooks, and the decay
of the new users' segment beside the whole population on one chart. Each step saves a
screenshot (see conftest.py for where).
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import quote

import pytest

pytestmark = pytest.mark.slow

# The demo's incidents (tripwire.demo.scenario): rule, feature, segment.
OPEN = {
    ("psi_top_feature_drift", "distance_km", "all"),
    ("segment_performance", "", "user_type=new"),
    ("segment_estimated_performance", "", "user_type=new"),
    ("manual_review_jump", "", "user_type=new"),
    ("latency_p95", "", "all"),
}
RESOLVED = {
    ("null_share_top_features", "merchant_risk", "all"),
    ("drift_digest", "session_jitter", "all"),
}


def _day(text: str) -> datetime:
    """The moment a cell starts with (``2026-10-29 00:10`` or ``2026-10-20``)."""
    return datetime.fromisoformat(text.split(" to ")[0].strip())


def sign_in(page: Any, site: Any, path: str = "/dashboard") -> None:
    """The token once in the address; the dashboard answers with a cookie and the page."""
    separator = "&" if "?" in path else "?"
    response = page.goto(site.url(f"{path}{separator}token={site.token}"))
    assert response.status == 200
    assert "token=" not in page.url  # redirected to the address without it


def test_the_store_holds_the_demo_incidents(site: Any) -> None:
    found = {(i["rule"], i["feature"], i["segment"]) for i in site.incidents}
    assert found >= OPEN | RESOLVED
    still_open = {
        (i["rule"], i["feature"], i["segment"]) for i in site.incidents if i["resolved_at"] is None
    }
    assert still_open >= OPEN


def test_sign_in_with_the_form(page: Any, site: Any) -> None:
    tab = page.page
    tab.goto(site.url("/dashboard/models/fraud-detector"))
    assert "/dashboard/login" in tab.url
    page.shot("00-sign-in")
    tab.fill("#token", "not the token")
    tab.click("button[type=submit]")
    assert tab.locator(".error").inner_text() == "Wrong token."
    assert page.errors == [
        "Failed to load resource: the server responded with a status of 401 (Unauthorized)"
    ]
    page.errors.clear()  # that one was asked for
    tab.fill("#token", site.token)
    tab.click("button[type=submit]")
    tab.wait_for_url(re.compile(r".*/dashboard/models/fraud-detector$"))
    assert tab.locator("h1").inner_text() == "fraud-detector"
    tab.click("text=Sign out")
    tab.wait_for_url(re.compile(r".*/dashboard/login$"))
    tab.goto(site.url("/dashboard"))
    assert "/dashboard/login" in tab.url


def test_click_through_overview_model_feature_incident(page: Any, site: Any) -> None:
    tab = page.page
    sign_in(tab, site)

    # Overview: the model, its four layers, the open incidents and their owners.
    card = tab.locator(".card.model")
    assert card.locator("h3").inner_text() == "fraud-detector"
    badges = card.locator(".layers .badge").all_inner_texts()
    assert [b.split(":")[0] for b in badges] == ["inputs", "predictions", "performance", "cost"]
    assert "inputs: alert" in badges and "cost: alert" in badges
    # Labels lag a week: the realized decay, older than the latest window, still shows.
    assert "performance: alert" in badges
    assert "owners: fraud-ds (#fraud-ml)" in card.inner_text()
    open_table = tab.locator("table").last
    rules = open_table.locator("tbody tr td:nth-child(2)").all_inner_texts()
    assert {rule for rule, _, _ in OPEN} <= set(rules)
    assert "the serving platform on-call" in open_table.inner_text()
    # When each was raised, a date and a time, on one line (an inline box broken over lines
    # has a rectangle per line).
    stamps = open_table.locator("tbody td .when")
    assert stamps.count() == open_table.locator("tbody tr").count()
    for i in range(stamps.count()):
        assert stamps.nth(i).evaluate("e => e.getClientRects().length") == 1
    page.shot("01-overview")

    # The model: a section per layer.
    card.locator("h3 a").click()
    tab.wait_for_url(re.compile(r".*/dashboard/models/fraud-detector$"))
    for section in ("Inputs", "Predictions", "Performance", "Cost and latency", "Incidents"):
        assert tab.locator("section h2", has_text=section).count() == 1
    ranked = tab.locator("#inputs tbody tr td:nth-child(2)").all_inner_texts()
    assert ranked[0] == "distance_km"  # importance x PSI puts the shifted feature first
    assert tab.locator("#inputs svg.spark").count() == len(ranked)
    band = tab.locator("#predictions figure", has_text="mean_pred").first
    assert band.locator("polygon.band").count() >= 1
    # Performance: the whole population and each segment on one chart, realized and estimated,
    # each with its threshold.
    auc = tab.locator("#performance figure", has_text="auc: overall").first
    legend = auc.locator(".legend").inner_text()
    for line in ("all", "user_type=new", "user_type=returning"):
        assert line in legend and f"{line} (estimated)" in legend
    assert auc.locator("polyline.ln").count() >= 3
    assert auc.locator("polyline.ln.dash").count() == 3
    assert auc.locator("line.thr").count() == 3
    # Each estimated series' legend key is dashed in its line's colour, not the text's grey.
    keys = auc.locator(".legend .key.dash")
    assert keys.count() == 3
    for i in range(keys.count()):
        key = keys.nth(i)
        colour = re.search(r"\bc(\d)\b", key.get_attribute("class") or "")
        assert colour is not None
        line = auc.locator(f"polyline.ln.dash.s{colour[1]}").first
        assert key.evaluate("e => getComputedStyle(e).borderTopStyle") == "dashed"
        drawn = line.evaluate("e => getComputedStyle(e).stroke")
        assert key.evaluate("e => getComputedStyle(e).borderTopColor") == drawn
        assert drawn != key.evaluate("e => getComputedStyle(e.parentElement).color")
    # The new users' decay, flagged: estimated from the scores, and realized.
    flagged = auc.locator("circle.pt.bad title").all_text_contents()
    assert any(t.startswith("user_type=new (estimated) ") for t in flagged)
    assert any(t.startswith("user_type=new 20") for t in flagged)
    assert tab.locator("#performance figure", has_text="label_coverage").count() == 1
    review = tab.locator("#performance figure", has_text="proxy_manual_review_share")
    assert "user_type=new" in review.locator(".legend").inner_text()
    assert tab.locator("#cost figure", has_text="latency percentiles").count() == 1
    incidents = tab.locator("#incidents tbody tr td:first-child").all_inner_texts()
    assert {rule for rule, _, _ in OPEN | RESOLVED} <= set(incidents)
    assert "delivered" in tab.locator("#incidents").inner_text()
    # Each incident says when it was raised and what its evidence is, newest raised first.
    headers = tab.locator("#incidents thead th").all_inner_texts()
    assert "opened" not in headers
    raised_at = headers.index("raised") + 1
    raised = tab.locator(f"#incidents tbody tr td:nth-child({raised_at})").all_inner_texts()
    assert raised == sorted(raised, reverse=True)
    evidence_at = headers.index("evidence window") + 1
    rows = tab.locator("#incidents tbody tr")
    found = {
        (r.locator("td").first.inner_text(), r.locator("td:nth-child(4)").inner_text()): (
            r.locator(f"td:nth-child({raised_at})").inner_text(),
            r.locator(f"td:nth-child({evidence_at})").inner_text(),
        )
        for r in rows.all()
    }
    # The new users' realized decay could only be raised once their labels landed, a week
    # after its evidence began, and after the estimate had seen it.
    realized = found["segment_performance", "auc [user_type=new]"]
    estimated = found["segment_estimated_performance", "estimated_auc [user_type=new]"]
    assert realized[0] > estimated[0]
    assert _day(realized[0]) - _day(realized[1]) > timedelta(days=7)
    page.shot("02-model")

    # A feature: its metrics over time and its histogram against the reference's.
    tab.locator("#inputs a", has_text="distance_km").click()
    tab.wait_for_url(re.compile(r".*/features/distance_km.*"))
    assert tab.locator("h1").inner_text() == "distance_km"
    assert tab.locator("svg.hist").count() == 8
    assert tab.locator("svg.hist rect.ref").count() > 0
    assert "user_type=new" in tab.locator("nav.segments").inner_text()
    page.shot("03-feature")
    tab.locator("nav.segments a", has_text="user_type=new").click()
    tab.wait_for_url(re.compile(r".*segment=user_type%3Dnew.*"))
    assert tab.locator("nav.segments a.on").inner_text() == "user_type=new"

    # An incident: the new users' decay, its runbook and its deliveries.
    tab.go_back()
    tab.go_back()
    tab.wait_for_url(re.compile(r".*/dashboard/models/fraud-detector$"))
    # By the rule's exact name: segment_estimated_performance fires on the same segment.
    row = tab.locator("#incidents tbody tr", has_text="user_type=new")
    row.locator("td:first-child").get_by_role(
        "link", name="segment_performance", exact=True
    ).first.click()
    tab.wait_for_url(re.compile(r".*/incidents/.*segment_performance.*user_type=new.*"))
    assert "segment_performance" in tab.locator("h1").inner_text()
    runbook = tab.locator("dl.runbook").inner_text()
    for heading in ("What this means", "What to check", "Who owns the fix"):
        assert heading in runbook
    assert "Realized auc fell by more than 0.05" in runbook
    facts = dict(
        zip(
            tab.locator("dl.facts dt").all_inner_texts(),
            tab.locator("dl.facts dd").all_inner_texts(),
            strict=True,
        )
    )
    key = tab.locator("dl.facts code").inner_text()
    [stored] = [i for i in site.incidents if i["dedup_key"] == key]
    assert facts["raised"] == f"{stored['detected_at']:%Y-%m-%d %H:%M}"
    assert facts["evidence window"].startswith(f"{stored['evidence_start']:%Y-%m-%d} to ")
    assert tab.locator("svg.chart rect.shade").count() == 1
    deliveries = tab.locator("table").last.inner_text()
    assert "firing" in deliveries and "delivered" in deliveries
    page.shot("04-incident")


def test_every_incident_and_feature_page_loads(page: Any, site: Any) -> None:
    tab = page.page
    sign_in(tab, site)
    model = "/dashboard/models/fraud-detector"
    for incident in site.incidents:
        response = tab.goto(site.url(f"{model}/incidents/{incident['dedup_key']}"))
        assert response.status == 200, incident["dedup_key"]
        assert incident["rule"] in tab.locator("h1").inner_text()
        assert tab.locator("dl.runbook dd").count() == 3
    for feature in site.config.columns.features:
        response = tab.goto(site.url(f"{model}/features/{quote(feature)}?windows=30"))
        assert response.status == 200, feature
        assert tab.locator("svg.hist").count() == 8
    for windows in (7, 30):
        assert tab.goto(site.url(f"{model}?windows={windows}")).status == 200
    page.shot("05-model-last-7")
