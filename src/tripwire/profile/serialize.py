"""Profiles to bytes and back: a versioned, pickle-free format.

The bytes are a NumPy ``.npz`` archive: one JSON document describing the object tree and one
array entry per numeric array. Loading never executes code (``allow_pickle=False``) and only
rebuilds the profile classes registered here.
"""

from __future__ import annotations

import io
import json
import zipfile
import zlib
from dataclasses import fields, is_dataclass
from typing import Any

import numpy as np

from tripwire.errors import TripwireError
from tripwire.profile.categorical import CategoricalBins, CategoricalWindow
from tripwire.profile.estimated import (
    BinaryEstimate,
    Estimation,
    LossModel,
    MulticlassEstimate,
    RegressionEstimate,
    ScoreCalibration,
    SoftHistogram,
)
from tripwire.profile.moments import Moments
from tripwire.profile.multiclass import ClassBins, ClassWindow, MulticlassPerformance
from tripwire.profile.numeric import NumericBins, NumericWindow
from tripwire.profile.outputs import (
    BinaryPerformance,
    CostWindow,
    PredictionWindow,
    RegressionPerformance,
)
from tripwire.profile.proxies import ProxyWindow
from tripwire.profile.quantile_sketch import QuantileSketch
from tripwire.profile.window import Bins, SegmentWindow, Settings

FORMAT = "tripwire.profile"
VERSION = 1
_CLASSES: dict[str, type] = {
    cls.__name__: cls
    for cls in (
        Bins,
        BinaryEstimate,
        BinaryPerformance,
        CategoricalBins,
        CategoricalWindow,
        ClassBins,
        ClassWindow,
        CostWindow,
        Estimation,
        LossModel,
        Moments,
        MulticlassEstimate,
        MulticlassPerformance,
        NumericBins,
        NumericWindow,
        PredictionWindow,
        ProxyWindow,
        QuantileSketch,
        RegressionEstimate,
        RegressionPerformance,
        ScoreCalibration,
        SegmentWindow,
        Settings,
        SoftHistogram,
    )
}


def register(cls: type) -> type:
    """Allow another module's dataclass (e.g. the fitted monitor state) in the format."""
    _CLASSES[cls.__name__] = cls
    return cls


def to_bytes(obj: Any) -> bytes:
    arrays: dict[str, np.ndarray] = {}

    def encode(value: Any) -> Any:
        if isinstance(value, np.ndarray):
            key = f"a{len(arrays)}"
            arrays[key] = value
            return {"__array__": key}
        if is_dataclass(value) and not isinstance(value, type):
            name = type(value).__name__
            if name not in _CLASSES:
                raise TypeError(f"{name} is not a registered profile class")
            return {
                "__type__": name,
                **{f.name: encode(getattr(value, f.name)) for f in fields(value)},
            }
        if isinstance(value, dict):
            return {"__map__": {str(k): encode(v) for k, v in value.items()}}
        if isinstance(value, tuple):
            return {"__tuple__": [encode(v) for v in value]}
        if isinstance(value, frozenset):
            return {"__set__": sorted(value)}
        if isinstance(value, list):
            return [encode(v) for v in value]
        if isinstance(value, np.generic):
            return value.item()
        return value

    meta = {"format": FORMAT, "version": VERSION, "root": encode(obj)}
    buffer = io.BytesIO()
    arrays["__meta__"] = np.frombuffer(json.dumps(meta).encode(), dtype=np.uint8)
    np.savez_compressed(buffer, **arrays)  # type: ignore[arg-type]
    return buffer.getvalue()


# What reading a damaged or foreign archive can raise (json.JSONDecodeError is a ValueError).
_UNREADABLE = (ValueError, OSError, KeyError, EOFError, zipfile.BadZipFile, zlib.error)


def from_bytes(data: bytes, source: str = "profile") -> Any:
    try:
        archive = np.load(io.BytesIO(data), allow_pickle=False)
        meta = json.loads(archive["__meta__"].tobytes())
    except _UNREADABLE as exc:
        raise TripwireError(f"{source}: not a tripwire profile ({exc})") from exc
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise TripwireError(f"{source}: not a tripwire profile")
    if meta.get("version") != VERSION:
        raise TripwireError(
            f"{source}: profile format version {meta.get('version')}, this tripwire reads "
            f"version {VERSION}; fit the reference again"
        )

    def decode(value: Any) -> Any:
        if isinstance(value, list):
            return [decode(v) for v in value]
        if not isinstance(value, dict):
            return value
        if "__array__" in value:
            return archive[value["__array__"]]
        if "__map__" in value:
            return {k: decode(v) for k, v in value["__map__"].items()}
        if "__tuple__" in value:
            return tuple(decode(v) for v in value["__tuple__"])
        if "__set__" in value:
            return frozenset(value["__set__"])
        name = value.get("__type__")
        cls = _CLASSES.get(name) if isinstance(name, str) else None
        if cls is None:
            raise TripwireError(f"{source}: unknown profile class {name!r}")
        return cls(**{k: decode(v) for k, v in value.items() if k != "__type__"})

    try:
        return decode(meta["root"])
    except (*_UNREADABLE, TypeError) as exc:
        raise TripwireError(f"{source}: damaged tripwire profile ({exc})") from exc
