"""The threshold lines of the dashboard's performance charts: where an alert rule watches a
series, the level the rule breaches at (as its incidents report it), else the level of the
metric's own verdict stored with its rows; the legend says which."""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from html import unescape

import pyarrow as pa
import pytest

from tripwire.config import parse_config
from tripwire.demo import scenario
from tripwire.server.dashboard.model import performance_figures
from tripwire.server.dashboard.series import grid, rule_levels, watching_rule

DAY = timedelta(days=1)
WINDOWS = [datetime(2026, 10, 1) + i * DAY for i in range(5)]
# The reference's manual-review share and the level stored with the proxy's rows (its own
# verdict: 50 % above the reference's share), per segment.
REFERENCE = {"all": 0.06, "user_type=new": 0.09}
OWN_LEVEL = {s: 1.5 * r for s, r in REFERENCE.items()}
PROXY = "proxy_manual_review_share"


def _rows(metric: str, segment: str, reference: float | None, level: float) -> list[dict]:
    return [
        {
            "window_start": start,
            "segment": segment,
            "feature": "",
            "layer": "performance",
            "metric": metric,
            "value": 0.05 + 0.01 * i,
            "status": "ok",
            "threshold": level,
            "reference": reference,
            "n": 1000,
        }
        for i, start in enumerate(WINDOWS)
    ]


def _history() -> pa.Table:
    rows = [r for s, ref in REFERENCE.items() for r in _rows(PROXY, s, ref, OWN_LEVEL[s])]
    rows += _rows("label_coverage", "all", None, 0.5)
    return pa.Table.from_pylist(rows)


def _thresholds(figure: str) -> dict[str, list[tuple[str, float]]]:
    """A figure's threshold lines: (colour class, value) by label."""
    found: dict[str, list[tuple[str, float]]] = {}
    for colour, label, value in re.findall(
        r'<line class="thr faint (s\d)"[^>]*><title>([^<]*): ([^<:]*)</title>', figure
    ):
        found.setdefault(unescape(label), []).append((colour, float(value)))
    return found


def test_the_proxy_chart_draws_its_rules_level_not_the_rows() -> None:
    # The demo's manual_review_jump: 0.10 over the reference's share, in every segment.
    config = parse_config(scenario.CONFIG_YAML)
    history = _history()
    figures = performance_figures(
        config, grid(history, WINDOWS), [PROXY, "label_coverage"], ["user_type=new"]
    )
    [proxy] = [f for f in figures if f"<figcaption>{PROXY}" in f]
    lines = _thresholds(proxy)
    label = "rule manual_review_jump: the level of each series (its colour)"
    assert list(lines) == [label]
    assert lines[label] == [
        ("s0", pytest.approx(REFERENCE["all"] + 0.1)),
        ("s1", pytest.approx(REFERENCE["user_type=new"] + 0.1)),
    ]
    assert f"</span>{label}</span>" in proxy  # the legend says whose level it is
    # No rule watches label coverage: its line is the level stored with its rows.
    [coverage] = [f for f in figures if "<figcaption>label_coverage" in f]
    assert _thresholds(coverage) == {
        "the metric's own alert level of each series (its colour)": [("s0", 0.5)]
    }


def test_a_rule_on_the_whole_population_leaves_the_segments_their_own_level() -> None:
    config = parse_config(
        scenario.CONFIG_YAML.replace(
            "metric: proxy_manual_review_share\n    segment: each",
            "metric: proxy_manual_review_share\n    segment: all",
        )
    )
    g = grid(_history(), WINDOWS)
    assert watching_rule(config, PROXY, "user_type=new") is None
    [proxy] = [
        f
        for f in performance_figures(config, g, [PROXY], ["user_type=new"])
        if f"<figcaption>{PROXY}" in f
    ]
    lines = _thresholds(proxy)
    assert lines["rule manual_review_jump: the level of each series (its colour)"] == [
        ("s0", pytest.approx(REFERENCE["all"] + 0.1))
    ]
    assert lines["the metric's own alert level of each series (its colour)"] == [
        ("s1", pytest.approx(OWN_LEVEL["user_type=new"]))
    ]


def test_a_rule_watching_both_ways_has_two_levels() -> None:
    config = parse_config(
        scenario.CONFIG_YAML.replace(
            "    baseline: reference\n    threshold: 0.1\n",
            "    baseline: reference\n    threshold: 0.1\n    direction: both\n",
        )
    )
    rule = watching_rule(config, PROXY, "all")
    assert rule is not None and rule.direction == "both"
    levels = rule_levels(rule, grid(_history(), WINDOWS), (PROXY, "", "all"), DAY)
    assert levels == [pytest.approx(REFERENCE["all"] - 0.1), pytest.approx(REFERENCE["all"] + 0.1)]
