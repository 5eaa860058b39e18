"""Rules over history with withheld verdicts, confidence intervals, segment selectors and
proxies: incidents read off by hand from small hand-made histories."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta

import pyarrow as pa
import pytest

from tripwire.alerts.engine import evaluate
from tripwire.config import ModelConfig, parse_config

DAY = timedelta(days=1)
T0 = datetime(2024, 5, 1)
WINDOWS = [T0 + i * DAY for i in range(16)]
RUNBOOK = "{what_it_means: m, what_to_check: c, who_owns_the_fix: o}"

HEADER = """\
name: fraud
task: binary
columns:
  features: {amount: numeric}
  prediction: score
  label: is_fraud
  segments: [user]
proxies:
  - {name: blocked_share, column: decision, equals: block, direction: above}
window: 1d
"""


def config(*rules: str) -> ModelConfig:
    body = "".join(
        f"  - {{name: r{i}, {rule}, runbook: {RUNBOOK}}}\n" for i, rule in enumerate(rules)
    )
    return parse_config(HEADER + "alerts:\n" + body)


def series(
    metric: str,
    values: Sequence[float],
    segment: str = "all",
    status: Sequence[str] | None = None,
    ci: Sequence[tuple[float | None, float | None]] | None = None,
    with_optional: bool = True,
) -> pa.Table:
    count = len(values)
    columns: dict[str, list] = {
        "window_start": WINDOWS[:count],
        "segment": [segment] * count,
        "feature": [""] * count,
        "layer": ["performance"] * count,
        "metric": [metric] * count,
        "value": list(values),
        "reference": [None] * count,
        "n": [1000] * count,
    }
    if with_optional:
        columns["status"] = list(status or ["ok"] * count)
        columns["ci_low"] = [c[0] for c in ci] if ci else [None] * count
        columns["ci_high"] = [c[1] for c in ci] if ci else [None] * count
    return pa.table(columns)


def incidents(cfg: ModelConfig, *tables: pa.Table) -> list[tuple[str, int, int, int | None]]:
    """(segment, start, opened, resolved) as window indices."""
    found = evaluate(cfg, pa.concat_tables(tables), WINDOWS, DAY, {})
    return [
        (
            i.segment,
            WINDOWS.index(i.evidence_start),
            WINDOWS.index(i.opened_at),
            None if i.resolved_at is None else WINDOWS.index(i.resolved_at),
        )
        for i in found
    ]


AUC_BELOW = "metric: auc, threshold: 0.8, direction: below, window: 2d"


def test_windows_with_insufficient_labels_have_no_verdict():
    values = [0.9] * 4 + [0.6] * 8 + [0.9] * 4
    status = ["ok"] * 4 + ["insufficient_labels"] * 3 + ["ok"] * 9
    # Windows 4-6 are withheld: the streak starts at 7 and opens at 8; it resolves after two
    # clean windows, at 13.
    assert incidents(config(AUC_BELOW), series("auc", values, status=status)) == [("all", 7, 8, 13)]
    # A store without a status column (older) judges every window.
    old = series("auc", values, with_optional=False)
    assert incidents(config(AUC_BELOW), old) == [("all", 4, 5, 13)]


def test_withheld_windows_neither_break_a_streak_nor_resolve():
    values = [0.6, 0.6, 0.9, 0.9, 0.6, 0.9, 0.9, 0.9]
    status = ["ok", "ok", "insufficient_labels", "no_data", "ok", "ok", "ok", "ok"]
    assert incidents(config(AUC_BELOW), series("auc", values, status=status)) == [("all", 0, 1, 6)]


def test_a_breach_needs_the_whole_interval_past_the_threshold():
    values = [0.9] * 2 + [0.75] * 6
    unsure = [(0.85, 0.95)] * 2 + [(0.65, 0.85)] * 6  # reaches back over 0.8
    sure = [(0.85, 0.95)] * 2 + [(0.70, 0.79)] * 6
    assert incidents(config(AUC_BELOW), series("auc", values, ci=unsure)) == []
    assert incidents(config(AUC_BELOW), series("auc", values, ci=sure)) == [("all", 2, 3, None)]


def test_an_uncertain_window_is_no_verdict_either_way():
    # Breach, breach (opens), then unsure windows: the incident stays open, unresolved.
    values = [0.7, 0.7, 0.75, 0.75, 0.75]
    ci = [(0.65, 0.75), (0.65, 0.75), (0.7, 0.82), (0.7, 0.82), (0.7, 0.82)]
    assert incidents(config(AUC_BELOW), series("auc", values, ci=ci)) == [("all", 0, 1, None)]


def test_z_baseline_leaves_withheld_values_out():
    # Withheld windows hold wild values (a handful of early labels); the trailing baseline
    # must not learn from them, or the real drop at window 12 would look normal.
    values = [0.90, 0.91, 0.89, 0.90, 0.91, 0.3, 0.2, 0.3, 0.90, 0.89, 0.91, 0.90, 0.70]
    status = ["ok"] * 5 + ["insufficient_labels"] * 3 + ["ok"] * 5
    rule = "metric: auc, threshold_z: 3, baseline: 5d_trailing"
    assert incidents(config(rule), series("auc", values, status=status)) == [("all", 12, 12, None)]


def test_segment_selectors():
    values = [0.6] * 3
    tables = [series("auc", values, segment=s) for s in ("all", "user=new", "user=returning")]
    rule = "metric: auc, threshold: 0.8, direction: below, window: 2d"
    by = {
        "each": ["all", "user=new", "user=returning"],
        "top": ["user=new", "user=returning"],
        "all": ["all"],
        "user=new": ["user=new"],
        "[user=returning]": ["user=returning"],
    }
    for selector, expected in by.items():
        found = incidents(config(f"{rule}, segment: {selector}"), *tables)
        assert [segment for segment, *_ in found] == expected, selector


@pytest.mark.parametrize(
    ("rule", "expected"),
    [
        ("metric: proxy_blocked_share, threshold: 0.05", [("all", 3, 4, None)]),
        ("metric: proxy_blocked_share, threshold: 0.5, baseline: reference", []),
    ],
)
def test_rules_on_proxy_metrics(rule: str, expected: list) -> None:
    values = [0.02, 0.02, 0.03, 0.09, 0.1, 0.1]
    assert incidents(config(rule + ", window: 2d"), series("proxy_blocked_share", values)) == (
        expected
    )
