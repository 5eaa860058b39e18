"""The config's performance, segments and proxies sections, and rules that use them."""

from __future__ import annotations

import re

import pytest

from tripwire.config import ConfigError, load_rules, parse_config
from tripwire.layers.catalog import CATALOG

BASE = """\
name: fraud
task: binary
columns:
  features: {amount: numeric, country: categorical}
  prediction: score
  label: is_fraud
  segments: [country]
"""

SECTIONS = """\
performance: {min_labels: 200, min_coverage: 0.4, confidence: 0.9}
segments:
  columns: [user_type]
  value: amount
  top: 3
  pinned: ["country=DE"]
  min_rows: 300
proxies:
  - {name: blocked_share, column: decision, equals: block}
  - {name: review_share, column: decision, in: [review, manual], direction: above}
  - {name: engaged_7d, column: clicked, mean: true, direction: below}
"""

RUNBOOK = "{what_it_means: m, what_to_check: c, who_owns_the_fix: o}"


def error_of(text: str) -> str:
    with pytest.raises(ConfigError) as info:
        parse_config(text, source="tripwire.yaml")
    return str(info.value)


def test_sections_load():
    config = parse_config(BASE + SECTIONS)
    assert config.performance.min_labels == 200
    assert config.performance.min_coverage == 0.4
    assert config.performance.confidence == 0.9
    # columns.segments and segments.columns are one list, in both places.
    assert config.columns.segments == config.segments.columns == ["country", "user_type"]
    assert config.segments.pinned == ["country=DE"]
    assert [p.metric for p in config.proxies] == [
        "proxy_blocked_share",
        "proxy_review_share",
        "proxy_engaged_7d",
    ]
    assert config.proxies[0].values == ["block"]
    assert config.proxies[1].values == ["review", "manual"]
    assert config.proxies[2].mean and config.proxies[2].values == []


def test_defaults():
    config = parse_config(BASE)
    assert (config.performance.min_labels, config.performance.min_coverage) == (100, 0.3)
    assert config.performance.confidence == 0.95
    assert (config.segments.top, config.segments.min_rows, config.segments.value) == (5, 100, None)
    assert config.proxies == []


def test_round_trip_keeps_in_and_segments():
    config = parse_config(BASE + SECTIONS)
    again = parse_config(config.to_yaml())
    assert again == config
    assert re.search(r"^\s+in:$", config.to_yaml(), re.MULTILINE)
    assert not re.search(r"\bin_:", config.to_yaml())


@pytest.mark.parametrize(
    ("extra", "expected"),
    [
        (
            "proxies:\n  - {name: b, column: d}\n",
            "tripwire.yaml:9: proxies[0]: give exactly one of equals, in and mean: true",
        ),
        (
            "proxies:\n  - {name: b, column: d, equals: x, mean: true}\n",
            "tripwire.yaml:9: proxies[0]: give exactly one of equals, in and mean: true",
        ),
        (
            "proxies:\n  - {name: Blocked, column: d, equals: x}\n",
            "tripwire.yaml:9: proxies[0].name: ",
        ),
        (
            "proxies:\n  - {name: b, column: d, in: []}\n",
            "tripwire.yaml:9: proxies[0].in: expected at least 1 item(s)",
        ),
        (
            "proxies:\n  - {name: b, column: d, equals: x}\n  - {name: b, column: e, mean: true}\n",
            "tripwire.yaml:10: proxies[1].name: duplicate proxy name 'b'",
        ),
        (
            "segments: {pinned: [DE]}\n",
            "tripwire.yaml:8: segments.pinned[0]: expected column=value with a segment column",
        ),
        (
            "segments: {pinned: ['device=ios']}\n",
            "tripwire.yaml:8: segments.pinned[0]: expected column=value with a segment column",
        ),
        (
            "segments: {columns: [score]}\n",
            "tripwire.yaml:8: segments.columns[0]: column 'score' is both a segment and the "
            "prediction",
        ),
        (
            "performance: {min_coverage: 1.5}\n",
            "tripwire.yaml:8: performance.min_coverage: expected a number <= 1",
        ),
    ],
)
def test_section_errors(extra: str, expected: str) -> None:
    assert error_of(BASE + extra).startswith(expected)


def _rule(body: str) -> str:
    return f"alerts:\n  - {{name: r, {body}, runbook: {RUNBOOK}}}\n"


def test_rules_on_proxies_and_segments_load():
    config = parse_config(
        BASE
        + SECTIONS
        + "alerts:\n"
        + f"  - {{name: a, metric: proxy_review_share, threshold: 0.2, runbook: {RUNBOOK}}}\n"
        + f"  - {{name: b, metric: proxy_blocked_share, threshold_z: 3, baseline: 7d_trailing, "
        f"segment: top, runbook: {RUNBOOK}}}\n"
        + f"  - {{name: c, metric: auc, threshold: 0.05, baseline: reference, "
        f"segment: user_type=new, runbook: {RUNBOOK}}}\n"
        + f"  - {{name: d, metric: proxy_blocked_share, threshold: 0.5, direction: above, "
        f"runbook: {RUNBOOK}}}\n"
    )
    a, b, c, d = config.alerts
    assert a.direction == "above"  # the proxy's own direction
    assert b.segment == "top" and b.direction is None  # z-rules watch both ways
    assert c.segment == ["user_type=new"]
    assert d.direction == "above"
    assert CATALOG[a.metric].layer == "performance" and a.metric in CATALOG


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (
            "metric: proxy_nope, threshold: 0.1",
            "tripwire.yaml:20: alerts[0].metric: unknown proxy metric 'proxy_nope'; the config "
            "declares proxy_blocked_share, proxy_review_share, proxy_engaged_7d",
        ),
        (
            "metric: proxy_blocked_share, threshold: 0.1",
            "tripwire.yaml:20: alerts[0]: a static threshold on proxy_blocked_share needs "
            "direction: above or below",
        ),
        (
            "metric: auc, threshold: 0.7, segment: device=ios",
            "tripwire.yaml:20: alerts[0].segment: expected column=value with a column from",
        ),
    ],
)
def test_rule_errors(body: str, expected: str) -> None:
    assert error_of(BASE + SECTIONS + _rule(body)).startswith(expected)


def test_segment_top_needs_segment_columns():
    text = BASE.replace("  segments: [country]\n", "") + _rule(
        "metric: auc, threshold: 0.7, segment: top"
    )
    assert "segment: top needs segment columns" in error_of(text)


def test_rules_file_with_proxy_rules_checks_against_the_config(tmp_path):
    config = parse_config(BASE + SECTIONS)
    rules = tmp_path / "rules.yaml"
    rules.write_text(_rule("metric: proxy_engaged_7d, threshold_z: 3, baseline: 7d_trailing"))
    assert load_rules(rules, config).alerts[0].metric == "proxy_engaged_7d"
    rules.write_text(_rule("metric: proxy_engaged_8d, threshold_z: 3, baseline: 7d_trailing"))
    with pytest.raises(ConfigError, match="unknown proxy metric 'proxy_engaged_8d'"):
        load_rules(rules, config)
