"""Bad input never takes the report down: the bad feature gets a reason, the rest are judged."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
from scipy import stats

import tripwire.stats as tw_stats
from tripwire.config import parse_config
from tripwire.errors import TripwireError
from tripwire.monitor import Monitor
from tripwire.tabular import read_table

CONFIG = """
name: bad-input
task: binary
columns:
  features: {x: numeric, y: numeric, c: categorical}
  prediction: score
  label: label
  latency_ms: latency
"""
VERDICTS = {"ok", "watch", "alert"}


def _frame(rng: np.random.Generator, n: int) -> pd.DataFrame:
    score = rng.random(n)
    return pd.DataFrame(
        {
            "x": rng.normal(0, 1, n),
            "y": rng.lognormal(0, 1, n),
            "c": rng.choice(["a", "b", "c"], n),
            "score": score,
            "label": (rng.random(n) < score).astype(float),
            "latency": rng.gamma(2.0, 30.0, n),
        }
    )


@pytest.fixture(scope="module")
def reference() -> pd.DataFrame:
    return _frame(np.random.default_rng(0), 4000)


@pytest.fixture(scope="module")
def monitor(reference) -> Monitor:
    return Monitor(parse_config(CONFIG)).fit(reference)


@pytest.fixture
def current() -> pd.DataFrame:
    return _frame(np.random.default_rng(1), 2000)


def _row(report, metric, feature=None):
    rows = [r for r in report.select(metric=metric) if r.feature == feature]
    assert len(rows) == 1, (metric, feature, rows)
    return rows[0]


def _assert_judged(report, features, psi_only=False):
    """Every named feature has a PSI (and for numeric, KS) value with a verdict."""
    for feature in features:
        for metric in ("psi",) if psi_only else ("psi", "js", "null_share"):
            row = _row(report, metric, feature)
            assert row.value is not None and np.isfinite(row.value), (feature, metric)
            assert row.status in VERDICTS, (feature, metric, row.status, row.reason)
        assert _row(report, "schema", feature).status == "ok"
    for layer in ("predictions", "performance", "cost"):
        assert report.select(layer=layer), layer


def test_empty_current_window(monitor, reference):
    report = monitor.check(reference.iloc[:0])
    assert report.n_rows == 0
    for feature in ("x", "y", "c"):
        assert _row(report, "schema", feature).status == "ok"
        for row in report.select(layer="inputs", feature=feature):
            if row.metric != "schema":
                assert row.status == "no_data" and row.value is None and row.reason
    assert all(r.status in {"no_data", "insufficient_labels", "info", "ok"} for r in report.rows)
    assert report.to_json()


def test_all_null_column(monitor, current):
    current["x"] = np.nan
    report = monitor.check(current)
    null_share = _row(report, "null_share", "x")
    assert null_share.value == 1.0 and null_share.status == "alert"
    for metric in ("psi", "ks", "js", "wasserstein", "wasserstein_norm", "out_of_range_share"):
        row = _row(report, metric, "x")
        assert row.status == "no_data" and row.value is None
        assert "no non-null values" in row.reason
    _assert_judged(report, ["y", "c"])


def test_all_null_object_column(monitor, current):
    # None in an object column arrives as Arrow's null type; that is not a schema change.
    current["x"] = None
    current["c"] = None
    report = monitor.check(current)
    for feature in ("x", "c"):
        assert _row(report, "null_share", feature).value == 1.0
        assert _row(report, "null_share", feature).status == "alert"
    _assert_judged(report, ["y"])


def test_constant_column():
    rng = np.random.default_rng(2)
    config = parse_config(CONFIG)
    reference = _frame(rng, 3000).assign(x=7.0)
    current = _frame(rng, 1000).assign(x=9.0)
    report = Monitor(config).fit(reference).check(current)
    norm = _row(report, "wasserstein_norm", "x")
    assert norm.status == "no_data" and norm.value is None
    assert norm.reason == "the reference is constant"
    assert _row(report, "wasserstein", "x").value == pytest.approx(2.0, abs=1e-12)
    assert _row(report, "ks", "x").value == 1.0
    assert _row(report, "ks", "x").status == "alert"
    assert _row(report, "out_of_range_share", "x").value == 1.0
    # Quantile buckets of a constant reference put 7 and 9 in the same (last) bucket, so PSI
    # cannot see this shift; it agrees with the raw-data PSI and KS carries the alert.
    assert _row(report, "psi", "x").value == tw_stats.psi(reference["x"], current["x"]) == 0.0
    _assert_judged(report, ["y", "c"])
    same = Monitor(config).fit(reference).check(current.assign(x=7.0))
    assert _row(same, "psi", "x").value == 0.0
    assert _row(same, "wasserstein", "x").value == 0.0


@pytest.mark.parametrize("missing", [None, np.nan, pd.NA], ids=["None", "nan", "pd.NA"])
def test_mixed_types_in_a_numeric_object_column(monitor, current, missing):
    current["x"] = pd.Series([1.0, "abc", 3] * 666 + [2.5, missing], dtype=object)
    report = monitor.check(current)
    schema = _row(report, "schema", "x")
    assert schema.status == "watch"
    assert "666 of 2000 values are not numbers" in schema.reason
    assert "'abc'" in schema.reason
    # The parseable values are still profiled; unparseable and missing ones count as null, and
    # a missing marker is not reported as a value that is not a number.
    assert _row(report, "null_share", "x").value == pytest.approx(667 / 2000, abs=1e-12)
    assert _row(report, "psi", "x").value is not None
    _assert_judged(report, ["y", "c"])


def test_infinite_values(monitor, reference, current):
    x = current["x"].to_numpy().copy()
    x[:50] = np.inf
    x[50:80] = -np.inf
    current["x"] = x
    report = monitor.check(current)
    for metric in ("psi", "ks", "js", "wasserstein", "wasserstein_norm", "out_of_range_share"):
        row = _row(report, metric, "x")
        assert row.value is not None and np.isfinite(row.value), metric
    # The infinities sit outside the reference range.
    assert _row(report, "out_of_range_share", "x").value >= 80 / 2000
    assert _row(report, "null_share", "x").value == 0.0
    finite = x[np.isfinite(x)]
    w = _row(report, "wasserstein", "x")
    exact = stats.wasserstein_distance(reference["x"], finite)
    assert abs(w.value - exact) <= w.bound + 1e-9
    _assert_judged(report, ["x", "y", "c"])


def test_unseen_category(monitor, current):
    c = current["c"].to_numpy().copy()
    c[:200] = "brand-new"
    c[200:210] = "other-new"
    current["c"] = c
    report = monitor.check(current)
    unseen = _row(report, "unseen_share", "c")
    assert unseen.value == pytest.approx(210 / 2000, abs=1e-12)
    assert unseen.status == "alert"
    assert "'brand-new' (200)" in unseen.reason and "'other-new' (10)" in unseen.reason
    assert _row(report, "chi2_pvalue", "c").value < 1e-6
    _assert_judged(report, ["x", "y"])


def test_feature_column_missing_from_current(monitor, current):
    report = monitor.check(current.drop(columns=["y"]))
    schema = _row(report, "schema", "y")
    assert schema.status == "alert"
    assert "column missing" in schema.reason
    assert report.select(layer="inputs", feature="y") == [schema]
    assert report.features()[0] == "y"  # a missing feature ranks first
    _assert_judged(report, ["x", "c"])


def test_extra_column_in_current(monitor, current):
    report = monitor.check(current.assign(surprise=1.5))
    schema = _row(report, "schema", "surprise")
    assert schema.status in {"watch", "info"}
    assert schema.feature == "surprise"
    assert schema.reason
    _assert_judged(report, ["x", "y", "c"])


def test_configured_columns_absent_from_reference_are_not_new(current):
    # The reference (a training set) has no latency; production logs do. Not a schema issue.
    rng = np.random.default_rng(3)
    reference = _frame(rng, 3000).drop(columns=["latency"])
    report = Monitor(parse_config(CONFIG)).fit(reference).check(current)
    assert not [r for r in report.select(metric="schema") if r.status != "ok"]
    assert report.status("inputs") in VERDICTS


def test_type_change_is_reported(monitor, current):
    current["c"] = np.arange(2000) % 3  # categories now arrive as integers
    report = monitor.check(current)
    schema = _row(report, "schema", "c")
    assert schema.status == "watch" and "type changed" in schema.reason
    _assert_judged(report, ["x", "y"])


def test_read_table_garbage_parquet(tmp_path):
    path = tmp_path / "day-01.parquet"
    path.write_bytes(b"this is not parquet at all")
    with pytest.raises(TripwireError, match=r"day-01\.parquet"):
        read_table(path)


def test_read_table_missing_file(tmp_path):
    path = tmp_path / "nowhere.parquet"
    with pytest.raises(TripwireError, match=r"nowhere\.parquet.*no such file"):
        read_table(path)


def test_read_table_unknown_suffix(tmp_path):
    path = tmp_path / "data.xlsx"
    path.write_bytes(b"x")
    with pytest.raises(TripwireError, match=r"data\.xlsx"):
        read_table(path)


def test_read_table_reads_parquet_and_csv(tmp_path):
    import pyarrow.parquet as pq

    table = pa.table({"a": [1, 2, 3], "b": ["x", "y", "z"]})
    pq.write_table(table, tmp_path / "t.parquet")
    assert read_table(tmp_path / "t.parquet").equals(table)
    (tmp_path / "t.csv").write_text("a,b\n1,x\n2,y\n3,z\n")
    assert read_table(tmp_path / "t.csv").to_pydict() == table.to_pydict()


def test_fit_on_reference_lacking_a_feature(reference):
    with pytest.raises(TripwireError, match=r"\by\b"):
        Monitor(parse_config(CONFIG)).fit(reference.drop(columns=["y"]))


def test_fit_on_reference_lacking_the_prediction(reference):
    with pytest.raises(TripwireError, match="score"):
        Monitor(parse_config(CONFIG)).fit(reference.drop(columns=["score"]))


def test_check_before_fit_is_a_tripwire_error(current):
    with pytest.raises(TripwireError, match="not fitted"):
        Monitor(parse_config(CONFIG)).check(current)


def test_unsupported_input_type_is_a_tripwire_error(monitor):
    with pytest.raises(TripwireError, match="list"):
        monitor.check([1, 2, 3])
