"""Profiles of a multiclass classifier's outputs: predicted classes and realized performance.

A multiclass model logs its predicted class (``columns.prediction``) and one probability column
per class (``columns.probabilities``). Class names are matched as text; a number matches by its
value (``2`` and ``2.0`` are class ``"2"``). What a window keeps:

* :class:`ClassWindow`: rows per predicted class (one more slot for a prediction that is none
  of the classes), null predictions, and the sum of the entropies of the probability rows;
* :class:`MulticlassPerformance`: the confusion matrix of the labelled rows and, per class, its
  probability's distribution on that class's reference grid among the rows of the class and
  the others (for one-vs-rest ROC AUC exactly as :func:`~tripwire.profile.outputs.
  auc_from_profile` gives a binary one).

Both merge by addition.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Self

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from tripwire.config import ModelConfig
from tripwire.errors import TripwireError
from tripwire.profile.numeric import Floats, Ints, NumericBins, NumericWindow
from tripwire.profile.outputs import Additive, auc_from_profile
from tripwire.stats.intervals import Interval, hanley_mcneil_se, wilson
from tripwire.tabular import categorical_values, numeric_values

UNKNOWN = -1  # a class index: null, or a value that is none of the classes


@dataclass(frozen=True)
class ClassBins:
    """The classes in column order and each class probability's bins on the reference."""

    classes: tuple[str, ...]
    probabilities: tuple[NumericBins, ...]

    @classmethod
    def fit(cls, classes: Sequence[str], probabilities: Floats, buckets: int, grid: int) -> Self:
        """``probabilities`` is (K, n), class-major, as :func:`class_probabilities` reads it."""
        return cls(
            tuple(classes), tuple(NumericBins.fit(row, buckets, grid) for row in probabilities)
        )


def class_probabilities(config: ModelConfig, table: pa.Table, required: bool) -> Floats:
    """The (K, n) class probabilities, class-major; a missing column is all null unless
    ``required`` (the reference), where it is an error."""
    assert config.columns.probabilities is not None
    rows = []
    for name, column in config.columns.probabilities.items():
        if column not in table.column_names:
            if required:
                raise TripwireError(
                    f"column '{column}' (probability of class {name!r}) is missing; the data "
                    f"has: {', '.join(table.column_names)}"
                )
            rows.append(np.full(table.num_rows, np.nan))
        else:
            rows.append(numeric_values(table.column(column))[0])
    return np.ascontiguousarray(np.vstack(rows)) if rows else np.empty((0, table.num_rows))


def top_probability(probabilities: Floats) -> Floats:
    """Each row's highest class probability: the model's confidence (NaN if any is null).

    >>> top_probability(np.array([[0.2, np.nan], [0.8, 0.5]])).tolist()
    [0.8, nan]
    """
    if probabilities.shape[0] == 0:
        return np.full(probabilities.shape[1], np.nan)
    top: Floats = probabilities.max(axis=0)
    return top


def _as_number(name: str) -> float:
    text = name.strip().lower()
    if text in ("true", "false"):
        return float(text == "true")
    try:
        return float(text)
    except ValueError:
        return math.nan


def class_index(column: pa.ChunkedArray, classes: Sequence[str]) -> Ints:
    """Each row's class as an index into ``classes``; :data:`UNKNOWN` (-1) for a null or a
    value that is none of them. Numbers match by value, text by its characters.

    >>> class_index(pa.chunked_array([[2.0, 0.0, None, 7.0]]), ["0", "1", "2"]).tolist()
    [2, 0, -1, -1]
    >>> class_index(pa.chunked_array([["cat", "dog", None]]), ["dog", "cat"]).tolist()
    [1, 0, -1]
    """
    kind = column.type
    if pa.types.is_integer(kind) or pa.types.is_floating(kind) or pa.types.is_boolean(kind):
        values = numeric_values(column)[0]
        out = np.full(values.size, UNKNOWN, dtype=np.int64)
        for k, name in enumerate(classes):
            code = _as_number(name)
            if not math.isnan(code):
                out[values == code] = k
        return out
    texts = categorical_values(column)
    index = pc.index_in(texts, value_set=pa.array(list(classes), pa.string()))
    found: Ints = pc.fill_null(index, UNKNOWN).to_numpy(zero_copy_only=False).astype(np.int64)
    return found


def entropy_bits(probabilities: Floats) -> Floats:
    """Per row, the entropy in bits of its class probabilities (0 log 0 = 0); NaN if any is
    null.

    >>> entropy_bits(np.array([[0.5, 1.0], [0.5, 0.0]])).tolist()
    [1.0, 0.0]
    """
    p = np.clip(probabilities, 0.0, 1.0)
    with np.errstate(divide="ignore", invalid="ignore"):
        terms = np.where(p > 0, -p * np.log2(p), 0.0)
    out: Floats = terms.sum(axis=0)
    out[np.isnan(probabilities).any(axis=0)] = np.nan
    return out


@dataclass(frozen=True)
class ClassWindow(Additive):
    """Predicted classes of a window.

    ``counts`` has one slot per class and a last one for predictions that are none of the
    classes; ``n_null`` counts null predictions; ``entropy_sum`` sums the entropy (bits) of the
    ``n_entropy`` rows whose probabilities are all present.
    """

    counts: Ints
    n_null: int
    entropy_sum: float
    n_entropy: int

    @classmethod
    def of(cls, predicted: Ints, null: np.ndarray, probabilities: Floats, k: int) -> Self:
        """``predicted`` class indexes (:data:`UNKNOWN` for none), ``null`` where the
        prediction is null, ``probabilities`` (K, n)."""
        slots = np.where(predicted >= 0, predicted, k)[~null]
        entropy = entropy_bits(probabilities)
        present = entropy[~np.isnan(entropy)]
        return cls(
            counts=np.bincount(slots, minlength=k + 1).astype(np.int64),
            n_null=int(np.count_nonzero(null)),
            entropy_sum=float(present.sum()),
            n_entropy=int(present.size),
        )

    @property
    def n(self) -> int:
        """Non-null predictions."""
        return int(self.counts.sum())

    def shares(self) -> Floats:
        """Share of each class (and, last, of unknown predictions) among non-null ones."""
        n = self.n
        shares: Floats = self.counts / n if n else np.full(self.counts.size, np.nan)
        return shares


@dataclass(frozen=True)
class MulticlassPerformance:
    """Realized performance of a multiclass classifier on the labelled rows of a window.

    ``confusion[a, b]`` counts rows of actual class ``a`` predicted ``b``; ``positives[c]`` and
    ``negatives[c]`` are class ``c``'s probability among the rows labelled ``c`` and the others,
    on its reference grid.
    """

    n_rows: int
    confusion: Ints
    positives: dict[str, NumericWindow]
    negatives: dict[str, NumericWindow]

    @classmethod
    def of(cls, labels: Ints, predicted: Ints, probabilities: Floats, bins: ClassBins) -> Self:
        """Rows whose label and prediction are classes and whose probabilities are present."""
        k = len(bins.classes)
        keep = (labels >= 0) & (predicted >= 0) & ~np.isnan(probabilities).any(axis=0)
        y, pred, x = labels[keep], predicted[keep], probabilities[:, keep]
        confusion = np.bincount(y * k + pred, minlength=k * k).reshape(k, k).astype(np.int64)
        positives, negatives = {}, {}
        for c, (name, class_bins) in enumerate(zip(bins.classes, bins.probabilities, strict=True)):
            mine = y == c
            positives[name] = NumericWindow.of(x[c, mine], class_bins)
            negatives[name] = NumericWindow.of(x[c, ~mine], class_bins)
        return cls(int(y.size), confusion, positives, negatives)

    def __add__(self, other: MulticlassPerformance) -> MulticlassPerformance:
        return MulticlassPerformance(
            self.n_rows + other.n_rows,
            self.confusion + other.confusion,
            {c: w + other.positives[c] for c, w in self.positives.items()},
            {c: w + other.negatives[c] for c, w in self.negatives.items()},
        )

    def _per_class(self) -> tuple[Floats, Floats, Floats]:
        tp = np.diag(self.confusion).astype(np.float64)
        return tp, self.confusion.sum(axis=0).astype(np.float64), self.confusion.sum(axis=1)

    def aucs(self) -> list[tuple[float, float]]:
        """Per class, its one-vs-rest ROC AUC and that value's error bound."""
        return [auc_from_profile(self.positives[c], self.negatives[c]) for c in self.positives]

    def metrics(self) -> dict[str, float]:
        """Accuracy, and precision, recall, F1 and one-vs-rest ROC AUC averaged over the
        classes where each is defined (macro, as scikit-learn's ``average="macro"``)."""
        tp, predicted, actual = self._per_class()
        with np.errstate(invalid="ignore", divide="ignore"):
            per_class = {
                "precision": np.where(predicted > 0, tp / predicted, np.nan),
                "recall": np.where(actual > 0, tp / actual, np.nan),
                "f1": np.where(predicted + actual > 0, 2 * tp / (predicted + actual), np.nan),
            }
        out = {"auc": _mean([auc for auc, _ in self.aucs()])}
        out.update({name: _mean(values.tolist()) for name, values in per_class.items()})
        out["accuracy"] = float(tp.sum() / self.n_rows) if self.n_rows else float("nan")
        return out

    def auc_bound(self) -> float:
        """The error bound of the macro AUC: the mean of the classes' bounds."""
        return _mean([bound for auc, bound in self.aucs() if auc == auc])

    def intervals(self, z: float) -> dict[str, Interval]:
        """Wilson for accuracy; for the macro metrics, the normal interval of a mean of the
        classes' values, their variances added as if the classes were independent
        (binomial for precision and recall, F1 through ``J = tp / (tp + fp + fn)``,
        Hanley-McNeil for AUC, widened by the profile's bound as a binary AUC's is)."""
        tp, predicted, actual = self._per_class()
        values = self.metrics()
        fp, fn = predicted - tp, actual - tp
        with np.errstate(invalid="ignore", divide="ignore"):
            precision = tp / predicted
            recall = tp / actual
            j = tp / (tp + fp + fn)
            variances = {
                "precision": precision * (1 - precision) / predicted,
                "recall": recall * (1 - recall) / actual,
                "f1": (2 / (1 + j) ** 2) ** 2 * j * (1 - j) / (tp + fp + fn),
                "auc": np.array([hanley_mcneil_se(*pair) ** 2 for pair in self._auc_counts()]),
            }
        out = {name: _mean_interval(values[name], v, z) for name, v in variances.items()}
        low, high = out["auc"]
        bound = self.auc_bound()
        if bound == bound:
            out["auc"] = (max(0.0, low - bound), min(1.0, high + bound))
        out["accuracy"] = wilson(float(tp.sum()), self.n_rows, z)
        return out

    def _auc_counts(self) -> list[tuple[float, int, int]]:
        return [
            (auc, self.positives[c].n, self.negatives[c].n)
            for c, (auc, _) in zip(self.positives, self.aucs(), strict=True)
        ]


def _mean(values: Sequence[float]) -> float:
    defined = [v for v in values if v == v]
    return float(np.mean(defined)) if defined else float("nan")


def _mean_interval(value: float, variances: Floats, z: float) -> Interval:
    """``value ± z sqrt(sum of the defined variances) / (their count)``, within [0, 1]."""
    defined = variances[~np.isnan(variances)]
    if value != value or defined.size == 0:
        return (float("nan"), float("nan"))
    half = z * math.sqrt(max(float(defined.sum()), 0.0)) / defined.size
    return max(0.0, value - half), min(1.0, value + half)
