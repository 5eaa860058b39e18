"""Feature importance as mean |SHAP value|, the input of ``feature_set: top_quartile_shap``.

The importance of feature *j* is the mean absolute SHAP value over *n* reference rows::

    importance_j = (1/n) · Σ_i |φ_ij|

where φ_ij is feature *j*'s Shapley-value contribution to the model's output for row *i*
(Lundberg & Lee 2017, "A Unified Approach to Interpreting Model Predictions", NeurIPS).
Tree ensembles are explained exactly and fast with TreeSHAP (Lundberg et al. 2020, "From
local explanations to global understanding with explainable AI for trees", Nature Machine
Intelligence 2:56-67); other models with shap's model-agnostic explainers against a
background sample of the reference.

SHAP values are in the units of the explained output: log-odds for boosted classifiers under
TreeSHAP, probability when ``predict_proba`` is explained. Compare importances within one model,
which is all :func:`top_quartile` and :func:`top_k` do.

Computing importance needs the optional extra ``pip install 'tripwire[importance]'``; reading
and ranking an importance CSV does not.
"""

from __future__ import annotations

import csv
import importlib
import math
import pickle
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click
import numpy as np
import numpy.typing as npt
import pyarrow as pa
from rich.console import Console
from rich.table import Table
from rich.text import Text

from tripwire.config import load_config
from tripwire.errors import TripwireError
from tripwire.tabular import read_table

__all__ = [
    "compute_importance",
    "importance_command",
    "load_model",
    "top_k",
    "top_quartile",
    "write_importance_csv",
]

Floats = npt.NDArray[np.float64]

MODEL_SUFFIXES = (".pkl", ".pickle", ".joblib")

# Rows of the reference that stand for "feature unknown" in the model-agnostic explainers
# (shap's own default for its Independent masker).
_BACKGROUND_ROWS = 100
# Up to this many features the model-agnostic path computes exact Shapley values (2^M
# coalitions per row); beyond it, shap's permutation estimate.
_MAX_EXACT_FEATURES = 10


def compute_importance(
    model: Any,
    reference: pa.Table,
    features: list[str],
    max_rows: int = 2000,
    seed: int = 0,
) -> dict[str, float]:
    """Mean |SHAP value| per feature, on a seeded sample of at most ``max_rows`` reference rows.

    ``importance_j = mean_i |φ_ij|`` (Lundberg & Lee 2017). Tree models (scikit-learn forests and
    boosting, XGBoost, LightGBM, anything ``shap.TreeExplainer`` accepts) are explained with
    TreeSHAP (Lundberg et al. 2020); for a binary classifier whose explanation has a class axis,
    the positive class is used. Any other model, a scikit-learn ``Pipeline`` included, is
    explained through ``predict_proba`` (else ``predict``) against a background of
    100 sampled rows; that is about 2^M × 100 model calls per row for M ≤ 10 features, so lower
    ``max_rows`` for slow models.

    The model receives the raw reference columns, categorical text included, so a ``Pipeline``
    that encodes its own inputs works as is. Columns go to the model in the order it was fitted
    with when it records one (``feature_names_in_``); otherwise in the order of ``features``,
    which must then be the model's input order. A listed feature that the model does not take
    gets importance 0.0.

    Raises :class:`~tripwire.errors.TripwireError` when shap is not installed, the reference
    lacks a column the model needs, or the model has more than one output.
    """
    shap = _import_shap()
    inputs = _model_inputs(model, features)
    sample = _sample(_select(reference, inputs), max_rows, seed)
    frame = sample.to_pandas()
    explainer = _tree_explainer(shap, model)
    if explainer is not None:
        values = _tree_shap_values(explainer, frame, model)
    else:
        values = _model_agnostic_shap_values(shap, model, frame)
    mean_abs = np.abs(_positive_class(values)).mean(axis=0)
    by_input = {name: float(value) for name, value in zip(inputs, mean_abs, strict=True)}
    return {feature: by_input.get(feature, 0.0) for feature in features}


def _import_shap() -> Any:
    try:
        return importlib.import_module("shap")
    except ImportError:
        raise TripwireError(
            "computing importance needs the optional extra: pip install 'tripwire[importance]'"
        ) from None


def _model_inputs(model: Any, features: list[str]) -> list[str]:
    """The columns the model takes, in its order: ``feature_names_in_`` when it records them."""
    fitted = getattr(model, "feature_names_in_", None)
    return list(features) if fitted is None else [str(name) for name in fitted]


def _select(reference: pa.Table, columns: list[str]) -> pa.Table:
    missing = [name for name in columns if name not in reference.column_names]
    if missing:
        raise TripwireError(
            f"the reference has no column {', '.join(map(repr, missing))}, which the model takes"
        )
    if reference.num_rows == 0:
        raise TripwireError("the reference has no rows to explain")
    return reference.select(columns)


def _sample(table: pa.Table, max_rows: int, seed: int) -> pa.Table:
    """At most ``max_rows`` rows in a seeded random order (so any prefix is a random sample)."""
    order = np.random.default_rng(seed).permutation(table.num_rows)[:max_rows]
    return table.take(pa.array(order))


def _tree_explainer(shap: Any, model: Any) -> Any:
    """``shap.TreeExplainer`` for a tree model, None for any other model."""
    try:
        return shap.TreeExplainer(model)
    except shap.utils._exceptions.InvalidModelError:
        return None


def _tree_shap_values(explainer: Any, frame: Any, model: Any) -> Floats:
    text = [name for name, dtype in frame.dtypes.items() if dtype.kind not in "biuf"]
    if text:
        raise TripwireError(
            f"{type(model).__name__} is explained by TreeSHAP, which needs numbers, but "
            f"{', '.join(map(repr, text))} hold text; save the encoder and the model together "
            "as a scikit-learn Pipeline"
        )
    values = explainer.shap_values(_as_fitted(model, frame))
    if isinstance(values, list):  # one array per class, from some model types
        values = np.stack(values, axis=-1)
    return np.asarray(values, dtype=np.float64)


def _model_agnostic_shap_values(shap: Any, model: Any, frame: Any) -> Floats:
    """SHAP values of ``predict_proba`` (else ``predict``) with a sampled background.

    shap's tabular masker compares values numerically, so text columns travel through it as
    integer codes and are decoded back to the raw values just before the model is called.
    """
    codes, decode = _encode(frame)
    predict = getattr(model, "predict_proba", None) or model.predict

    def on_raw_rows(rows: Floats) -> Any:
        return predict(_as_fitted(model, decode(rows)))

    masker = shap.maskers.Independent(codes[:_BACKGROUND_ROWS], max_samples=_BACKGROUND_ROWS)
    names = list(frame.columns)
    if len(names) <= _MAX_EXACT_FEATURES:
        explainer = shap.explainers.Exact(on_raw_rows, masker, feature_names=names)
        explanation = explainer(codes, silent=True)
    else:
        explainer = shap.explainers.Permutation(on_raw_rows, masker, feature_names=names)
        explanation = explainer(codes, max_evals=max(500, 2 * len(names) + 1), silent=True)
    return np.asarray(explanation.values, dtype=np.float64)


def _encode(frame: Any) -> tuple[Floats, Callable[[Floats], Any]]:
    """The frame as floats (text as category codes, missing text as NaN), and the inverse."""
    pandas = importlib.import_module("pandas")
    columns: list[Floats] = []
    categories: dict[int, npt.NDArray[Any]] = {}
    for index, name in enumerate(frame.columns):
        column = frame[name]
        if column.dtype.kind in "biuf":
            columns.append(column.to_numpy(dtype=np.float64, na_value=np.nan))
            continue
        codes, uniques = pandas.factorize(column, use_na_sentinel=True)
        categories[index] = np.asarray(uniques, dtype=object)
        columns.append(np.where(codes < 0, np.nan, codes).astype(np.float64))
    encoded = np.column_stack(columns)

    def decode(rows: Floats) -> Any:
        data: dict[str, Any] = {}
        for index, name in enumerate(frame.columns):
            values = rows[:, index]
            if index in categories:
                known = ~np.isnan(values)
                raw = np.full(len(values), None, dtype=object)
                raw[known] = categories[index][values[known].astype(np.intp)]
                values = raw
            data[name] = values
        return pandas.DataFrame(data)

    return encoded, decode


def _as_fitted(model: Any, frame: Any) -> Any:
    """A DataFrame for models fitted on one (they check column names), else a plain array."""
    return frame if hasattr(model, "feature_names_in_") else frame.to_numpy()


def _positive_class(values: Floats) -> Floats:
    """(rows, features) SHAP values; a binary classifier's class axis keeps the positive class."""
    if values.ndim == 2:
        return values
    outputs = values.shape[-1]
    if values.ndim == 3 and outputs in (1, 2):
        return values[..., outputs - 1]
    raise TripwireError(
        f"expected a regressor or a binary classifier, got a model with {outputs} outputs"
    )


def load_model(path: Path) -> Any:
    """Load a model saved with pickle or joblib (``.pkl``, ``.pickle``, ``.joblib``).

    Loading a pickle runs code from that file: only load models you trust. joblib is used when
    installed (it reads plain pickles too); the model's own library (scikit-learn, XGBoost, ...)
    must be importable. Errors are :class:`~tripwire.errors.TripwireError` naming the file.
    """
    path = Path(path)
    if path.suffix.lower() not in MODEL_SUFFIXES:
        raise TripwireError(
            f"{path}: expected a pickled model ({', '.join(MODEL_SUFFIXES)}), "
            f"got '{path.suffix or 'no suffix'}'"
        )
    if not path.is_file():
        raise TripwireError(f"{path}: no such file")
    try:
        model = _unpickle(path)
    except Exception as exc:  # unpickling can raise nearly anything; all mean "unreadable"
        raise TripwireError(f"{path}: cannot load the model: {type(exc).__name__}: {exc}") from exc
    if not callable(getattr(model, "predict", None)):
        raise TripwireError(f"{path}: expected a model with predict(), got {type(model).__name__}")
    return model


def _unpickle(path: Path) -> Any:
    try:
        joblib = importlib.import_module("joblib")
    except ImportError:
        with path.open("rb") as handle:
            return pickle.load(handle)
    return joblib.load(path)


def write_importance_csv(importance: dict[str, float], path: Path) -> None:
    """Write ``feature,importance`` rows, most important first, for ``importance:`` in a config.

    ``ModelConfig.resolve_importance()`` reads the file back; values are written in full
    precision so the round trip is exact.
    """
    bad = [name for name, value in importance.items() if not (math.isfinite(value) and value >= 0)]
    if bad:
        raise TripwireError(f"importance of {', '.join(map(repr, bad))} is not a number >= 0")
    try:
        with Path(path).open("w", newline="", encoding="utf-8") as handle:
            writer = csv.writer(handle)
            writer.writerow(["feature", "importance"])
            for feature in _ranked(importance):
                writer.writerow([feature, repr(float(importance[feature]))])
    except OSError as exc:
        raise TripwireError(f"{path}: cannot write the importance file: {exc.strerror}") from exc


def _ranked(importance: dict[str, float]) -> list[str]:
    """Features by importance, highest first; ties by name."""
    return sorted(importance, key=lambda feature: (-importance[feature], feature))


def top_quartile(importance: dict[str, float]) -> list[str]:
    """Features at or above the 75th percentile of the importances: ``feature_set:
    top_quartile_shap``.

    The cut is ``numpy.percentile(values, 75)`` (linear interpolation); every feature tied at the
    cut is included, so with equal importances all qualify. A feature of importance 0 never
    qualifies, so all-zero importances (no importance known) select nothing. Ranked highest
    first, ties by name.

    >>> top_quartile({"a": 4.0, "b": 3.0, "c": 2.0, "d": 1.0})
    ['a']
    >>> top_quartile({"b": 1.0, "a": 1.0, "c": 1.0})
    ['a', 'b', 'c']
    >>> top_quartile({"a": 0.0, "b": 0.0, "c": 0.0, "d": 0.0, "e": 0.2})
    ['e']
    >>> top_quartile({"a": 0.0, "b": 0.0})
    []
    """
    if not importance:
        return []
    cut = float(np.percentile(list(importance.values()), 75))
    return [f for f in _ranked(importance) if importance[f] >= cut and importance[f] > 0]


def top_k(importance: dict[str, float], k: int) -> list[str]:
    """The ``k`` most important features (``feature_set: {top_k: k}``); ties broken by name.

    >>> top_k({"b": 2.0, "a": 2.0, "c": 5.0}, 2)
    ['c', 'a']
    """
    if k < 1:
        raise ValueError(f"k must be at least 1, got {k}")
    return _ranked(importance)[:k]


@click.command("importance")
@click.option(
    "--config",
    "config_path",
    default=Path("tripwire.yaml"),
    show_default=True,
    type=click.Path(path_type=Path),
    help="The model's tripwire.yaml (for the features and the default reference).",
)
@click.option(
    "--model",
    "model_path",
    required=True,
    type=click.Path(path_type=Path),
    help="The trained model, pickled or saved with joblib (.pkl, .pickle, .joblib).",
)
@click.option(
    "--reference",
    type=click.Path(path_type=Path),
    help="Reference data (Parquet or CSV); default: the config's `reference`.",
)
@click.option(
    "--out",
    "out_path",
    type=click.Path(path_type=Path),
    help="Where to write the CSV; default: importance.csv next to the config.",
)
@click.option(
    "--max-rows",
    default=2000,
    show_default=True,
    type=click.IntRange(min=1),
    help="Explain at most this many reference rows (a seeded sample).",
)
def importance_command(
    config_path: Path,
    model_path: Path,
    reference: Path | None,
    out_path: Path | None,
    max_rows: int,
) -> None:
    """Rank the features by mean |SHAP value| on the reference, for top_quartile_shap alerts.

    Loading a pickled model runs code from it: only use models you trust.

    \b
    Example:
      tripwire importance --config tripwire.yaml --model model.joblib \\
                          --reference reference.parquet
    """
    config = load_config(config_path)
    if reference is None and config.reference is None:
        raise TripwireError(f"{config_path}: no --reference given and the config names none")
    reference_path = reference or config.resolve_path(str(config.reference))
    out_path = out_path or config_path.parent / "importance.csv"
    model = load_model(model_path)
    table = read_table(reference_path)
    with Console(stderr=True).status("computing mean |SHAP| per feature"):
        importance = compute_importance(
            model, table, list(config.columns.features), max_rows=max_rows
        )
    write_importance_csv(importance, out_path)
    _print_ranking(importance)
    _print_next_step(out_path, config_path)


def _print_ranking(importance: dict[str, float]) -> None:
    top = set(top_quartile(importance))
    table = Table(title="Feature importance (mean |SHAP|)", title_justify="left")
    table.add_column("rank", justify="right")
    table.add_column("feature")
    table.add_column("importance", justify="right")
    table.add_column("top quartile")
    for rank, feature in enumerate(_ranked(importance), start=1):
        mark = "yes" if feature in top else ""
        table.add_row(str(rank), Text(feature), f"{importance[feature]:.4g}", mark)
    Console().print(table)


def _print_next_step(out_path: Path, config_path: Path) -> None:
    try:
        written = out_path.resolve().relative_to(config_path.resolve().parent)
    except ValueError:
        written = out_path.resolve()
    console = Console(highlight=False)
    console.print(Text(f"wrote {out_path}"))
    console.print(
        Text(
            f"set `importance: {written.as_posix()}` in {config_path} so that "
            "feature_set: top_quartile_shap and top_k use it"
        )
    )
