"""The HTML report: self-contained, escaped, complete and small."""

from __future__ import annotations

import re
from html import escape
from html.parser import HTMLParser
from pathlib import Path
from typing import get_args

import numpy as np
import pyarrow as pa
import pytest

from tripwire import Monitor, Report
from tripwire.config import parse_config
from tripwire.layers.rows import MetricRow, Status
from tripwire.report.html import format_number, render_report, render_timeline
from tripwire.report.model import Histogram

STATUSES: tuple[Status, ...] = get_args(Status)
SECTIONS = ("Inputs", "Predictions", "Performance", "Cost & latency")
TOY_CONFIG = """
name: toy
task: binary
columns:
  features: {x: numeric, c: categorical}
  prediction: score
  label: y
  latency_ms: lat
  segments: [c]
importance: {x: 0.7, c: 0.3}
"""


class _TagChecker(HTMLParser):
    """Records end tags that do not close the innermost open element."""

    VOID = frozenset({"meta", "br", "hr", "img", "input", "link", "rect", "line"})

    def __init__(self) -> None:
        super().__init__()
        self.open: list[str] = []
        self.mismatched: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag not in self.VOID:
            self.open.append(tag)

    def handle_endtag(self, tag: str) -> None:
        if tag in self.VOID:
            return
        if self.open and self.open[-1] == tag:
            self.open.pop()
        else:
            self.mismatched.append(tag)


def _assert_self_contained(page: str) -> None:
    assert page.startswith("<!DOCTYPE html>")
    checker = _TagChecker()
    checker.feed(page)
    assert checker.open == [] and checker.mismatched == []
    for forbidden in ("http://", "https://", "src=", "<script", "<link", "@import", "url("):
        assert forbidden not in page.lower(), forbidden


@pytest.fixture(scope="module")
def toy_report() -> Report:
    rng = np.random.default_rng(0)
    n = 5000
    ref = pa.table({
        "x": rng.normal(size=n),
        "c": rng.choice(["a", "b"], n),
        "score": rng.random(n),
        "y": rng.integers(0, 2, n),
        "lat": rng.gamma(2, 50, n),
    })  # fmt: skip
    cur = pa.table({
        "x": rng.normal(1, size=n),
        "c": rng.choice(["a", "b", "z"], n),
        "score": rng.random(n),
        "y": rng.integers(0, 2, n),
        "lat": rng.gamma(2, 80, n),
    })  # fmt: skip
    monitor = Monitor(parse_config(TOY_CONFIG)).fit(ref)
    return monitor.check(cur, window="2026-11-01")


def test_report_page_has_header_sections_and_histograms(toy_report: Report) -> None:
    page = render_report(toy_report)
    _assert_self_contained(page)
    for heading in SECTIONS:
        assert f"<h2>{escape(heading)}</h2>" in page
    for text in ("toy", "binary", "2026-11-01", "5,000"):
        assert text in page
    # One badge per layer, with the status as text and as colour.
    assert '<a class="badge s-alert" href="#inputs">Inputs: alert</a>' in page
    assert '<a class="badge s-alert" href="#cost">Cost &amp; latency: alert</a>' in page
    assert page.count('class="badge s-') >= 4
    # Features in report order, each with its histogram.
    positions = [page.index(f'<th scope="row">{name}</th>') for name in toy_report.features()]
    assert positions == sorted(positions)
    assert page.count("<svg") == len(toy_report.histograms) == 2
    assert "<title>(other): reference 0.0%, current 33.6%</title>" in page
    # The unseen category shows up as a note; segment groups as collapsible blocks.
    assert "unseen: &#x27;z&#x27; (1680)" in page
    assert "<summary>c=a" in page and "<summary>c=b" in page


def test_report_to_html_writes_the_same_page(toy_report: Report, tmp_path: Path) -> None:
    path = tmp_path / "report.html"
    page = toy_report.to_html(path)
    assert path.read_text(encoding="utf-8") == page == render_report(toy_report)


def test_svg_numbers_are_compact(toy_report: Report) -> None:
    page = render_report(toy_report)
    svg = "".join(re.findall(r"<svg.*?</svg>", page, flags=re.S))
    numbers = re.findall(r'\b(?:x|y|width|height)="([^"]+)"', svg)
    assert numbers
    assert all(re.fullmatch(r"-?\d+(\.\d)?", n) for n in numbers), numbers


def test_status_cells_carry_text_and_class() -> None:
    rows = [MetricRow(layer="cost", metric=f"m_{s}", value=1.0, status=s) for s in STATUSES]
    page = render_report(Report(model="m", task="binary", n_rows=1, reference_rows=1, rows=rows))
    for status in STATUSES:
        assert f'<td class="st s-{status}">{status}</td>' in page


def test_user_text_is_escaped() -> None:
    evil = "<script>alert(1)</script>"
    rows = [
        MetricRow(
            layer="inputs", metric="psi", feature=evil, value=0.4, status="alert",
            threshold=0.25, reason="<b>bold</b> & 'quoted'", importance=1.0,
        ),
        MetricRow(layer="cost", metric="p95_ms", segment="<seg>", value=412.0, status="alert"),
    ]  # fmt: skip
    hist = Histogram(labels=["<i>cat", '"q"'], reference=[0.5, 0.5], current=[0.9, 0.1])
    report = Report(
        model="<m>", task="binary", window="<w>", n_rows=10, reference_rows=10, rows=rows,
        histograms={evil: hist},
    )  # fmt: skip
    for page in (render_report(report), render_timeline("<t>", [("<day>", report)])):
        assert "<script" not in page
        assert "<b>bold" not in page and "<i>cat" not in page and "<seg>" not in page
        assert escape(evil) in page
        assert "&lt;b&gt;bold&lt;/b&gt; &amp; &#x27;quoted&#x27;" in page
        assert "&lt;i&gt;cat" in page and "&quot;q&quot;" in page
        assert "&lt;m&gt;" in page and "&lt;w&gt;" in page
    assert "&lt;day&gt;" in render_timeline("<t>", [("<day>", report)])


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (None, "\u2014"),
        (float("nan"), "\u2014"),
        (0.0, "0"),
        (0.31234, "0.3123"),
        (412.37, "412.4"),
        (123456.7, "123,457"),
        (9999.7, "10,000"),
        (5000, "5,000"),
        (float("inf"), "\u221e"),
        (1.5e-7, "1.5e-07"),
    ],
)
def test_format_number(value: float | int | None, text: str) -> None:
    assert format_number(value) == text


def _wide_report(n_numeric: int = 80, n_categorical: int = 20, n: int = 2000) -> Report:
    rng = np.random.default_rng(1)
    numeric = [f"num_{i:02d}" for i in range(n_numeric)]
    categorical = [f"cat_{i:02d}" for i in range(n_categorical)]
    features = ", ".join(
        [f"{f}: numeric" for f in numeric] + [f"{f}: categorical" for f in categorical]
    )
    config = parse_config(
        f"name: wide\ntask: binary\ncolumns: {{features: {{{features}}}, prediction: score, "
        "label: y, latency_ms: lat, segments: [cat_00]}\n"
    )
    categories = np.array([f"value_{k}" for k in range(60)])  # more than max_categories

    def table(shift: float) -> pa.Table:
        columns: dict[str, object] = {f: rng.normal(shift, size=n) for f in numeric}
        columns.update(
            {f: categories[rng.integers(0, 40 + int(20 * shift), n)] for f in categorical}
        )
        columns.update(score=rng.random(n), y=rng.integers(0, 2, n), lat=rng.gamma(2, 50, n))
        return pa.table(columns)

    return Monitor(config).fit(table(0.0)).check(table(0.5), window="wide-day")


def test_hundred_features_stay_under_two_megabytes() -> None:
    report = _wide_report()
    assert len(report.features()) == 100
    page = render_report(report)
    _assert_self_contained(page)
    assert len(page.encode()) < 2_000_000
    for heading in SECTIONS:
        assert f"<h2>{escape(heading)}</h2>" in page
    for name in report.features():
        assert f'<th scope="row">{name}</th>' in page
        assert name in report.histograms
        assert f'role="img" aria-label="histogram of {name}:' in page
    assert page.count("<svg") == 100


def test_timeline_has_a_row_per_day_and_the_last_report(toy_report: Report) -> None:
    calm = toy_report.model_copy(
        update={
            "window": "calm",
            "rows": [r.model_copy(update={"status": "ok"}) for r in toy_report.rows],
        }
    )
    days = [("Mon", calm), ("Tue", toy_report)]
    page = render_timeline("toy demo", days, extra_sections='<section id="extra">EXTRA</section>')
    _assert_self_contained(page)
    table = page[page.index('<table class="timeline">') : page.index("</table>")]
    rows = re.findall(r"<tr><th scope=\"row\">(.*?)</th>(.*?)</tr>", table, flags=re.S)
    assert [label for label, _ in rows] == ["Mon", "Tue"]
    mon, tue = (re.findall(r'<td class="s-(\w+)">', cells) for _, cells in rows)
    assert mon == ["ok", "ok", "ok", "ok"]
    assert tue == [
        toy_report.status(layer) for layer in ("inputs", "predictions", "performance", "cost")
    ]
    assert tue == ["alert", "ok", "ok", "alert"]
    tue_cells = rows[1][1]
    for text in (
        "psi x 0.931",
        "unseen_share c 0.336",
        "p95_ms 378",
        "p95_ms [c=a] 367",
        "auc [c=a] 0.469",
    ):
        assert text in tue_cells
    assert "<li>" not in rows[0][1]
    # Extra sections, then the last day's full report with the same sections as render_report.
    assert page.index("EXTRA") < page.index("Last day: Tue")
    last = page[page.index("Last day: Tue") :]
    for heading in SECTIONS:
        assert f"<h2>{escape(heading)}</h2>" in last
    assert last.count("<svg") == len(toy_report.histograms)


def test_timeline_without_days() -> None:
    page = render_timeline("empty", [])
    _assert_self_contained(page)
    assert "No days." in page


def test_performance_rows_show_interval_and_coverage() -> None:
    row = MetricRow(
        layer="performance", metric="auc", value=0.81, status="insufficient_labels", n=120,
        ci_low=0.74, ci_high=0.88, coverage=0.12, reason="120 of 1000 rows labelled",
    )  # fmt: skip
    report = Report(model="m", task="binary", n_rows=1000, reference_rows=1, rows=[row])
    page = render_report(report)
    assert "[0.74, 0.88]" in page and "120 (12 % labelled)" in page
    assert ".s-insufficient_labels{" in page or ",.s-insufficient_labels" in page
    assert '<td class="st s-insufficient_labels">insufficient_labels</td>' in page
