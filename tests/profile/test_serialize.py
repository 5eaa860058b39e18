"""Profile bytes: size independent of row count, exact round trips, clear errors."""

from __future__ import annotations

import io
import json

import numpy as np
import pyarrow as pa
import pytest

from tripwire.config import parse_config
from tripwire.errors import TripwireError
from tripwire.monitor import FittedState, Monitor
from tripwire.profile import serialize
from tripwire.profile.categorical import CategoricalBins, CategoricalWindow
from tripwire.profile.numeric import NumericBins, NumericWindow
from tripwire.profile.outputs import BinaryPerformance, RegressionPerformance
from tripwire.profile.quantile_sketch import QuantileSketch

CONFIG = parse_config(
    """
name: size
task: binary
columns: {features: {x: numeric}, prediction: score}
"""
)


def _table(rng: np.random.Generator, n: int) -> pa.Table:
    return pa.table({"x": rng.lognormal(0.0, 1.0, n), "score": rng.random(n)})


def test_profile_size_does_not_grow_with_rows():
    rng = np.random.default_rng(1)
    monitor = Monitor(CONFIG).fit(_table(rng, 50_000))
    small = len(serialize.to_bytes(monitor.profile(_table(rng, 10_000))))
    large = len(serialize.to_bytes(monitor.profile(_table(rng, 1_000_000))))
    assert large < 1.5 * small
    assert large < 200_000


def test_numeric_window_size_does_not_grow_with_rows():
    rng = np.random.default_rng(2)
    bins = NumericBins.fit(rng.normal(size=20_000))
    small = len(serialize.to_bytes(NumericWindow.of(rng.normal(size=10_000), bins)))
    large = len(serialize.to_bytes(NumericWindow.of(rng.normal(size=1_000_000), bins)))
    assert large < 1.5 * small
    assert large < 200_000


def test_round_trip_gives_equal_objects(same_profile):
    rng = np.random.default_rng(3)
    x = rng.normal(size=3000)
    x[:10] = [np.nan, np.inf, -np.inf, 0, 0, 0, 1, 1, np.nan, 2]
    bins = NumericBins.fit(x)
    cat = pa.array([*rng.choice(["a", "b", "c"], 500).tolist(), None, "é", "with space"])
    cat_bins = CategoricalBins.fit(cat, max_categories=2)
    p = rng.random(800)
    y = (rng.random(800) < p).astype(float)
    objects = [
        bins,
        NumericWindow.of(x, bins),
        NumericWindow.of(np.empty(0), bins),
        cat_bins,
        CategoricalWindow.of(pa.array(["a", "zz", "zz", None, "yy"]), cat_bins),
        QuantileSketch.of(rng.gamma(2.0, 30.0, 1000)),
        BinaryPerformance.of(y, p, NumericBins.fit(p), 0.5),
        RegressionPerformance.of(y, p),
    ]
    for obj in objects:
        back = serialize.from_bytes(serialize.to_bytes(obj))
        same_profile(back, obj)  # exact: the format stores float64 bit for bit

    monitor = Monitor(CONFIG).fit(_table(rng, 2000))
    windows = monitor.profile(_table(rng, 500))
    same_profile(serialize.from_bytes(serialize.to_bytes(windows)), windows)
    state = FittedState("yaml: 1", monitor.settings, monitor.bins_, monitor.reference_, {"x": 1.0})
    same_profile(serialize.from_bytes(serialize.to_bytes(state)), state)


def _rewrite_meta(data: bytes, change) -> bytes:
    archive = np.load(io.BytesIO(data), allow_pickle=False)
    meta = json.loads(archive["__meta__"].tobytes())
    arrays = {k: archive[k] for k in archive.files if k != "__meta__"}
    meta = change(meta)
    buffer = io.BytesIO()
    np.savez(buffer, __meta__=np.frombuffer(json.dumps(meta).encode(), np.uint8), **arrays)
    return buffer.getvalue()


def _window_bytes() -> bytes:
    bins = NumericBins.fit(np.arange(100.0))
    return serialize.to_bytes(NumericWindow.of(np.arange(50.0), bins))


def test_wrong_version_names_source_and_versions():
    data = _rewrite_meta(_window_bytes(), lambda m: {**m, "version": 99})
    with pytest.raises(TripwireError, match=r"day-3\.profile.*version 99"):
        serialize.from_bytes(data, source="day-3.profile")


def test_wrong_format_names_source():
    data = _rewrite_meta(_window_bytes(), lambda m: {**m, "format": "something.else"})
    with pytest.raises(TripwireError, match=r"day-3\.profile"):
        serialize.from_bytes(data, source="day-3.profile")


@pytest.mark.parametrize(
    "data",
    [
        b"definitely not a profile",
        b"",
        b"PK\x03\x04 a truncated zip",
        pytest.param(_window_bytes()[:200], id="truncated"),
    ],
)
def test_garbage_bytes_raise_tripwire_error_naming_source(data):
    with pytest.raises(TripwireError, match=r"week-7\.bin"):
        serialize.from_bytes(data, source="week-7.bin")


def test_unknown_class_is_refused_with_tripwire_error():
    def evil(meta):
        meta["root"]["__type__"] = "os.system"
        return meta

    with pytest.raises(TripwireError, match=r"x\.bin"):
        serialize.from_bytes(_rewrite_meta(_window_bytes(), evil), source="x.bin")


def test_unregistered_class_cannot_be_written():
    from dataclasses import dataclass

    @dataclass
    class Stranger:
        a: int = 1

    with pytest.raises(TypeError, match="Stranger"):
        serialize.to_bytes(Stranger())
