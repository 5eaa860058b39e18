"""Segments chosen by business value at fit, and proxy sums in window profiles."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from tripwire.config import Proxy, parse_config
from tripwire.errors import TripwireError
from tripwire.monitor import Monitor
from tripwire.profile.proxies import ProxyWindow, row_values
from tripwire.profile.segments import choose_segments
from tripwire.profile.window import merge_windows

CONFIG = """\
name: shop
task: binary
columns:
  features: {amount: numeric}
  prediction: score
  label: label
segments:
  columns: [country]
  top: 2
"""


def _reference() -> pa.Table:
    # US: many small orders; DE and CH: few large ones; FR: in between.
    rows = {"US": (600, 10.0), "FR": (250, 30.0), "DE": (100, 200.0), "CH": (50, 300.0)}
    country, amount = [], []
    for name, (count, value) in rows.items():
        country += [name] * count
        amount += [value] * count
    return pa.table({"country": country, "amount": amount})


def test_top_by_row_count_without_a_value_column():
    chosen = choose_segments(parse_config(CONFIG), _reference())
    assert chosen == {"country=US": 600.0, "country=FR": 250.0}


def test_top_by_business_value():
    # Value: US 6,000, FR 7,500, DE 20,000, CH 15,000.
    config = parse_config(CONFIG + "  value: amount\n")
    assert choose_segments(config, _reference()) == {"country=DE": 20000.0, "country=CH": 15000.0}


def test_business_value_column_is_the_fallback():
    config = parse_config(CONFIG + "business_value: {value_column: amount}\n")
    assert list(choose_segments(config, _reference())) == ["country=DE", "country=CH"]


def test_pinned_segments_are_always_tracked_and_come_last():
    config = parse_config(CONFIG + "  value: amount\n  pinned: ['country=US', 'country=DE']\n")
    assert list(choose_segments(config, _reference())) == ["country=DE", "country=CH", "country=US"]


def test_pinned_segment_absent_from_the_reference_is_an_error():
    config = parse_config(CONFIG + "  pinned: ['country=UK']\n")
    with pytest.raises(TripwireError, match=r"'country=UK' does not occur in the reference"):
        choose_segments(config, _reference())


def test_missing_value_column_is_an_error():
    config = parse_config(CONFIG + "  value: revenue\n")
    with pytest.raises(TripwireError, match=r"column 'revenue' \(segments.value\) is missing"):
        choose_segments(config, _reference())


def test_ties_are_broken_by_name_and_nulls_are_no_segment():
    table = pa.table({"country": ["b", "a", None, None, None, "c", "c"]})
    config = parse_config(CONFIG)
    assert list(choose_segments(config, table)) == ["country=c", "country=a"]


def test_fit_keeps_the_chosen_segments_and_their_values():
    config = parse_config(CONFIG + "  value: amount\n")
    rng = np.random.default_rng(0)
    reference = _reference().to_pandas()
    reference["score"] = rng.random(len(reference))
    reference["label"] = (rng.random(len(reference)) < reference["score"]).astype(float)
    monitor = Monitor(config).fit(reference)
    assert monitor.bins_.segments == ("country=DE", "country=CH")
    assert monitor.bins_.segment_values == {"country=DE": 20000.0, "country=CH": 15000.0}
    assert set(monitor.reference_) == {"all", "country=DE", "country=CH"}
    # The value column is expected in windows: no "new column" note for it.
    assert "amount" not in monitor.profile(reference)["all"].notes


# Proxies ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("proxy", "column", "expected"),
    [
        (
            Proxy(name="p", column="d", equals="block"),
            ["block", "pass", None, "block"],
            [1, 0, np.nan, 1],
        ),
        (
            Proxy.model_validate({"name": "p", "column": "d", "in": ["review", "manual"]}),
            ["review", "pass", "manual", None],
            [1, 0, 1, np.nan],
        ),
        (Proxy(name="p", column="c", mean=True), [True, False, None, True], [1, 0, np.nan, 1]),
        (Proxy(name="p", column="c", mean=True), [0.5, None, 2.0, 1.0], [0.5, np.nan, 2, 1]),
        (Proxy(name="p", column="c", equals=3), [3, 1, None, 3], [1, 0, np.nan, 1]),
        (Proxy(name="p", column="c", equals="3"), [3, 1, None, 3], [1, 0, np.nan, 1]),
        (Proxy(name="p", column="c", equals=True), [True, False, None], [1, 0, np.nan]),
        (Proxy(name="p", column="c", equals=True), ["true", "false", None], [1, 0, np.nan]),
        (Proxy(name="p", column="c", equals=2), ["2", "3", "x"], [1, 0, 0]),
    ],
)
def test_row_values(proxy: Proxy, column: list, expected: list) -> None:
    got = row_values(proxy, pa.chunked_array([column]))
    np.testing.assert_array_equal(got, np.array(expected, dtype=float))


PROXIES = (
    CONFIG
    + """\
proxies:
  - {name: blocked, column: decision, equals: block}
  - {name: review, column: decision, in: [review, manual]}
  - {name: engaged, column: clicked, mean: true}
"""
)


def _window(rng: np.random.Generator, n: int, block: float) -> pd.DataFrame:
    decision = rng.choice(
        ["block", "review", "manual", "pass"], n, p=[block, 0.1, 0.05, 0.85 - block]
    )
    decision = decision.astype(object)
    decision[rng.random(n) < 0.05] = None
    clicked = rng.random(n) < 0.3
    return pd.DataFrame(
        {
            "amount": rng.lognormal(3, 1, n),
            "country": rng.choice(["US", "FR", "DE"], n, p=[0.5, 0.3, 0.2]),
            "score": rng.random(n),
            "label": rng.integers(0, 2, n).astype(float),
            "decision": decision,
            "clicked": clicked,
        }
    )


def test_proxy_sums_per_segment_match_pandas_and_merge_by_addition():
    rng = np.random.default_rng(1)
    monitor = Monitor(parse_config(PROXIES)).fit(_window(rng, 3000, 0.02))
    days = [_window(rng, n, b) for n, b in ((800, 0.02), (1200, 0.05), (500, 0.1))]
    whole = pd.concat(days, ignore_index=True)
    profile = monitor.profile(whole)
    for segment, rows in (("all", whole), ("country=US", whole[whole["country"] == "US"])):
        decided = rows["decision"].dropna()
        blocked = profile[segment].proxies["blocked"]
        assert (blocked.n, blocked.total) == (len(decided), (decided == "block").sum())
        assert blocked.value == pytest.approx((decided == "block").mean(), abs=1e-12)
        review = profile[segment].proxies["review"]
        assert review.total == decided.isin(["review", "manual"]).sum()
        engaged = profile[segment].proxies["engaged"]
        assert engaged.value == pytest.approx(rows["clicked"].mean(), abs=1e-12)
        assert engaged.total_sq == engaged.total  # 0/1 values
    merged = merge_windows([monitor.profile(day) for day in days])
    for segment in profile:
        assert merged[segment].proxies == profile[segment].proxies


def test_proxy_column_missing_from_the_window_has_no_sums():
    rng = np.random.default_rng(2)
    monitor = Monitor(parse_config(PROXIES)).fit(_window(rng, 2000, 0.02))
    window = monitor.profile(_window(rng, 500, 0.02).drop(columns=["clicked"]))
    assert set(window["all"].proxies) == {"blocked", "review"}


def test_proxy_window_value():
    assert ProxyWindow(4, 1.0, 1.0).value == 0.25
    assert np.isnan(ProxyWindow(0, 0.0, 0.0).value)


def test_profiles_with_proxies_round_trip_through_bytes():
    from tripwire.profile import serialize

    rng = np.random.default_rng(3)
    monitor = Monitor(parse_config(PROXIES)).fit(_window(rng, 2000, 0.02))
    profile = monitor.profile(_window(rng, 600, 0.05))
    again = serialize.from_bytes(serialize.to_bytes(profile))
    assert again["all"].proxies == profile["all"].proxies
