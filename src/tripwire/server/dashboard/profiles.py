"""One feature's bucket counts out of a stored profile, without decoding the rest.

A window profile (:mod:`tripwire.profile.serialize`) is a NumPy ``.npz`` archive: a JSON tree
(``__meta__``) naming one array entry per numeric array. With 200 features in 11 segments it
holds thousands of entries and decoding all of it takes seconds; the feature page needs two
arrays of it per window. This reads the archive's directory, the tree, and those arrays only,
and falls back to :func:`~tripwire.profile.serialize.from_bytes` for anything it does not
recognize. The fitted reference the job keeps in the store (``Store.reference``: the monitor's
saved state, the same format) is read the same way, for its bins and its counts.
"""

from __future__ import annotations

import io
import itertools
import json
import struct
import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from tripwire.errors import TripwireError
from tripwire.monitor import FittedState
from tripwire.profile import serialize
from tripwire.profile.categorical import CategoricalBins, CategoricalWindow
from tripwire.profile.numeric import NumericBins, NumericWindow
from tripwire.profile.window import Bins, SegmentWindow

__all__ = [
    "Counts",
    "feature_counts",
    "reference_counts",
    "stored_reference_counts",
    "stored_segments",
]

_END = struct.Struct("<4s4H2LH")  # end of central directory
_ENTRY = struct.Struct("<4s4B4HL2L5H2L")  # central directory entry (46 bytes)
_LOCAL = struct.Struct("<4s2B4HL2L2H")  # local file header (30 bytes)
_ZIP64 = 0xFFFFFFFF


@dataclass(frozen=True)
class Counts:
    """A feature's non-null values per bucket in one window of one segment."""

    counts: np.ndarray
    n_rows: int
    n_null: int

    @property
    def shares(self) -> list[float]:
        total = int(self.counts.sum())
        return [float(c) / total if total else 0.0 for c in self.counts]


class _UnreadableError(Exception):
    """Not the layout this module reads; the full decoder takes over."""


def _directory(data: bytes) -> dict[str, tuple[int, int, int]]:
    """Member name -> (local header offset, compressed size, compression method)."""
    end = data.rfind(b"PK\x05\x06", max(0, len(data) - 65_557))
    if end < 0:
        raise _UnreadableError("no end of central directory")
    _, _, _, _, count, _, offset, _ = _END.unpack_from(data, end)
    if offset == _ZIP64 or count == 0xFFFF:
        raise _UnreadableError("zip64 directory")
    found: dict[str, tuple[int, int, int]] = {}
    pos = offset
    for _ in range(count):
        entry = _ENTRY.unpack_from(data, pos)
        if entry[0] != b"PK\x01\x02":
            raise _UnreadableError("bad central directory entry")
        method, size, name_len, extra_len, comment_len, header = (
            entry[6],
            entry[10],
            entry[12],
            entry[13],
            entry[14],
            entry[18],
        )
        if size == _ZIP64 or header == _ZIP64:
            raise _UnreadableError("zip64 member")
        name = data[pos + 46 : pos + 46 + name_len].decode("utf-8")
        found[name] = (header, size, method)
        pos += 46 + name_len + extra_len + comment_len
    return found


def _array(data: bytes, directory: dict[str, tuple[int, int, int]], key: str) -> np.ndarray:
    try:
        header, size, method = directory[f"{key}.npy"]
    except KeyError:
        raise _UnreadableError(f"no member {key}") from None
    local = _LOCAL.unpack_from(data, header)
    if local[0] != b"PK\x03\x04":
        raise _UnreadableError("bad local header")
    start = header + _LOCAL.size + local[10] + local[11]
    raw = data[start : start + size]
    if method == 8:
        raw = zlib.decompressobj(-15).decompress(raw)
    elif method != 0:
        raise _UnreadableError(f"compression method {method}")
    array: np.ndarray = np.lib.format.read_array(io.BytesIO(raw), allow_pickle=False)
    return array


def _node(meta: Any, *path: str) -> Any:
    node = meta
    for key in path:
        if not isinstance(node, dict):
            raise _UnreadableError("unexpected tree")
        node = node.get("__map__", node).get(key)
        if node is None:
            return None
    return node


# What reading a layout other than the expected one may raise; the full decoder takes over.
_FALLBACK = (_UnreadableError, ValueError, KeyError, TypeError, struct.error, zlib.error)


def _tree(data: bytes) -> tuple[dict[str, tuple[int, int, int]], Any]:
    """The archive's directory and the root of its object tree."""
    directory = _directory(data)
    meta = json.loads(_array(data, directory, "__meta__").tobytes())
    if meta.get("format") != serialize.FORMAT or meta.get("version") != serialize.VERSION:
        raise _UnreadableError("another format")
    return directory, meta["root"]


def _window_counts(
    data: bytes, directory: dict[str, tuple[int, int, int]], window: Any, feature: str
) -> Counts | None:
    """``feature``'s counts in a segment window's tree node (None: no such window or feature)."""
    found = _node(window, "features", feature) if window is not None else None
    if found is None:
        return None
    kind = found.get("__type__")
    ref = found.get("psi_counts" if kind == "NumericWindow" else "counts")
    if kind not in ("NumericWindow", "CategoricalWindow") or not isinstance(ref, dict):
        raise _UnreadableError(f"feature of type {kind}")
    counts = _array(data, directory, ref["__array__"])
    return Counts(counts, int(found["n_rows"]), int(found["n_null"]))


def feature_counts(profile: bytes, segment: str, feature: str) -> Counts | None:
    """The bucket counts of ``feature`` in ``segment`` of a stored window profile (PSI
    buckets of a numeric feature, the vocabulary and "other" of a categorical one); None when
    the window has no such segment or feature."""
    try:
        directory, root = _tree(profile)
        return _window_counts(profile, directory, _node(root, segment), feature)
    except _FALLBACK:
        return _decoded(profile, segment, feature)


def _decoded(profile: bytes, segment: str, feature: str) -> Counts | None:
    """The slow way: decode the whole profile."""
    windows: dict[str, SegmentWindow] = serialize.from_bytes(profile, "stored window profile")
    window = windows.get(segment)
    found = window.features.get(feature) if window is not None else None
    return _counts(found)


def _counts(found: object) -> Counts | None:
    if isinstance(found, NumericWindow):
        return Counts(found.psi_counts, found.n_rows, found.n_null)
    if isinstance(found, CategoricalWindow):
        return Counts(found.counts, found.n_rows, found.n_null)
    return None


def _edge_labels(edges: np.ndarray) -> list[str]:
    shown = [f"{e:.4g}" for e in edges]
    return [f"[{a}, {b})" for a, b in itertools.pairwise(shown)]


def _category_labels(vocabulary: Sequence[str]) -> list[str]:
    return [*vocabulary, "(other)"]


def reference_counts(
    bins: Bins, reference: dict[str, SegmentWindow], segment: str, feature: str
) -> tuple[list[str], Counts | None]:
    """The buckets' labels and the reference's counts of ``feature`` in ``segment``."""
    feature_bins = bins.features.get(feature)
    labels: list[str] = []
    if isinstance(feature_bins, NumericBins):
        labels = _edge_labels(feature_bins.psi_edges)
    elif isinstance(feature_bins, CategoricalBins):
        labels = _category_labels(feature_bins.vocabulary)
    window = reference.get(segment)
    return labels, _counts(window.features.get(feature) if window is not None else None)


def stored_reference_counts(
    state: bytes, segment: str, feature: str
) -> tuple[list[str], Counts | None]:
    """:func:`reference_counts` out of a stored fitted reference (``Monitor.to_bytes``),
    reading its tree, ``feature``'s bins and its counts in ``segment`` only."""
    try:
        directory, root = _tree(state)
        if not isinstance(root, dict) or root.get("__type__") != "FittedState":
            raise _UnreadableError("not a fitted state")
        found = _node(root, "bins", "features", feature)
        labels: list[str] = []
        if found is not None:
            kind = found.get("__type__")
            if kind == "NumericBins":
                labels = _edge_labels(_array(state, directory, found["psi_edges"]["__array__"]))
            elif kind == "CategoricalBins":
                vocabulary = found["vocabulary"]
                if not isinstance(vocabulary, dict) or "__tuple__" not in vocabulary:
                    raise _UnreadableError("vocabulary")
                labels = _category_labels([str(x) for x in vocabulary["__tuple__"]])
            else:
                raise _UnreadableError(f"bins of type {kind}")
        window = _node(root, "reference", segment)
        return labels, _window_counts(state, directory, window, feature)
    except _FALLBACK:
        fitted = serialize.from_bytes(state, "stored reference")
        if not isinstance(fitted, FittedState):
            raise TripwireError("stored reference: not a fitted monitor's state") from None
        return reference_counts(fitted.bins, fitted.reference, segment, feature)


def stored_segments(state: bytes) -> tuple[str, ...]:
    """The tracked segments of a stored fitted reference, most valuable first."""
    try:
        _, root = _tree(state)
        found = _node(root, "bins", "segments")
        if not isinstance(found, dict) or not isinstance(found.get("__tuple__"), list):
            raise _UnreadableError("segments")
        return tuple(str(s) for s in found["__tuple__"])
    except _FALLBACK:
        fitted = serialize.from_bytes(state, "stored reference")
        if not isinstance(fitted, FittedState):
            raise TripwireError("stored reference: not a fitted monitor's state") from None
        return fitted.bins.segments
