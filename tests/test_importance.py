"""Feature importance: mean |SHAP| per feature, the CSV the config reads, and the rankings."""

from __future__ import annotations

import pickle
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner

from tripwire.config import load_config
from tripwire.errors import TripwireError
from tripwire.importance import (
    compute_importance,
    importance_command,
    load_model,
    top_k,
    top_quartile,
    write_importance_csv,
)

FEATURES = ["a", "b", "c"]


def _data(n: int = 400, seed: int = 1) -> tuple[pa.Table, Any]:
    """Features a (drives the target strongly), b (weakly), c (not at all), and that target."""
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 3))
    target = 3.0 * X[:, 0] + 1.0 * X[:, 1] + 0.3 * rng.normal(size=n)
    return pa.table({name: X[:, j] for j, name in enumerate(FEATURES)}), target


def _matrix(table: pa.Table) -> Any:
    return np.column_stack([table[name].to_numpy() for name in FEATURES])


# --- rankings ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("importance", "expected"),
    [
        ({"a": 4.0, "b": 3.0, "c": 2.0, "d": 1.0}, ["a"]),
        ({"a": 3.0, "b": 3.0, "c": 1.0, "d": 1.0}, ["a", "b"]),  # cut at 3: both ties in
        ({"e": 4.0, "a": 2.0, "b": 2.0, "c": 2.0, "d": 2.0}, ["e", "a", "b", "c", "d"]),  # cut 2
        ({"b": 0.5, "a": 0.5, "c": 0.5}, ["a", "b", "c"]),  # all equal: all qualify
        ({"a": 0.0, "b": 0.0, "c": 0.0}, []),  # all zero: none
        ({"a": 0.0, "b": 0.0, "c": 0.0, "d": 0.0, "e": 1.0}, ["e"]),  # cut 0: zeros stay out
        ({"only": 2.0}, ["only"]),
        ({}, []),
    ],
)
def test_top_quartile(importance: dict[str, float], expected: list[str]) -> None:
    assert top_quartile(importance) == expected


def test_top_k_breaks_ties_by_name() -> None:
    importance = {"d": 1.0, "c": 2.0, "b": 2.0, "a": 0.5}
    assert top_k(importance, 1) == ["b"]
    assert top_k(importance, 3) == ["b", "c", "d"]
    assert top_k(importance, 10) == ["b", "c", "d", "a"]
    with pytest.raises(ValueError, match="at least 1"):
        top_k(importance, 0)


# --- the CSV -------------------------------------------------------------------------------


def _write_config(folder: Path, extra: str = "") -> Path:
    path = folder / "tripwire.yaml"
    path.write_text(
        "name: m\ntask: regression\n"
        "columns:\n  features: {a: numeric, b: numeric, c: numeric}\n  prediction: p\n" + extra,
        encoding="utf-8",
    )
    return path


def test_csv_round_trips_through_the_config(tmp_path: Path) -> None:
    importance = {"a": 1 / 3, "b": 2.0e-17, "c": 0.0}
    write_importance_csv(importance, tmp_path / "importance.csv")
    lines = (tmp_path / "importance.csv").read_text(encoding="utf-8").splitlines()
    assert lines[0] == "feature,importance"
    assert [line.split(",")[0] for line in lines[1:]] == ["a", "b", "c"]  # highest first
    config = load_config(_write_config(tmp_path, "importance: importance.csv\n"))
    assert config.resolve_importance() == importance  # exact: full precision


def test_csv_rejects_values_the_config_would_reject(tmp_path: Path) -> None:
    with pytest.raises(TripwireError, match="'b'"):
        write_importance_csv({"a": 1.0, "b": float("nan")}, tmp_path / "x.csv")
    with pytest.raises(TripwireError, match="'a'"):
        write_importance_csv({"a": -1.0}, tmp_path / "x.csv")


# --- loading a model -----------------------------------------------------------------------


class _Model:
    """A picklable stand-in: predict is all tripwire asks of a loaded object."""

    def predict(self, X: Any) -> Any:
        return np.asarray(X)[:, 0]


@pytest.mark.parametrize("suffix", [".pkl", ".pickle"])
def test_load_model_reads_a_pickle(tmp_path: Path, suffix: str) -> None:
    path = tmp_path / f"model{suffix}"
    path.write_bytes(pickle.dumps(_Model()))
    assert isinstance(load_model(path), _Model)


def test_load_model_reads_joblib(tmp_path: Path) -> None:
    joblib = pytest.importorskip("joblib")
    path = tmp_path / "model.joblib"
    joblib.dump(_Model(), path)
    assert isinstance(load_model(path), _Model)


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("model.onnx", b"", "expected a pickled model"),
        ("missing.pkl", None, "no such file"),
        ("broken.pkl", b"not a pickle", "cannot load the model"),
        ("plain.pkl", pickle.dumps({"weights": [1, 2]}), "expected a model with predict"),
    ],
)
def test_load_model_errors_name_the_file(
    tmp_path: Path, name: str, content: bytes | None, message: str
) -> None:
    path = tmp_path / name
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(TripwireError, match=message) as caught:
        load_model(path)
    assert str(path) in str(caught.value)


# --- mean |SHAP| ---------------------------------------------------------------------------


def test_without_shap_the_error_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "shap", None)  # makes `import shap` raise ImportError
    table, _ = _data(20)
    with pytest.raises(TripwireError, match=r"pip install 'tripwire\[importance\]'"):
        compute_importance(_Model(), table, FEATURES)


@pytest.mark.parametrize(
    ("name", "options"),
    [
        ("GradientBoostingClassifier", {"n_estimators": 50}),
        ("RandomForestClassifier", {"n_estimators": 20, "max_depth": 6}),  # has a class axis
        ("RandomForestRegressor", {"n_estimators": 20, "max_depth": 6}),
        ("HistGradientBoostingRegressor", {"max_iter": 50}),
    ],
)
def test_tree_models_match_tree_shap_and_rank_a_b_c(name: str, options: dict[str, int]) -> None:
    shap = pytest.importorskip("shap")
    ensemble = pytest.importorskip("sklearn.ensemble")
    model = getattr(ensemble, name)(random_state=0, **options)
    table, target = _data()
    X = _matrix(table)
    model.fit(X, target > 0 if name.endswith("Classifier") else target)

    importance = compute_importance(model, table, FEATURES, max_rows=len(X))

    values = np.asarray(shap.TreeExplainer(model).shap_values(X))
    if values.ndim == 3:  # a classifier's class axis: the positive class
        values = values[..., 1]
    expected = np.abs(values).mean(axis=0)
    assert list(importance) == FEATURES
    np.testing.assert_allclose([importance[f] for f in FEATURES], expected, rtol=1e-9)
    assert importance["a"] > importance["b"] > importance["c"]


def test_linear_model_matches_the_closed_form() -> None:
    # Exact interventional SHAP of f(x) = w·x + b with the data as background:
    # φ_j(x) = w_j (x_j - mean(x_j)), so mean |φ_j| = |w_j| · mean |x_j - mean(x_j)|.
    pytest.importorskip("shap")
    linear_model = pytest.importorskip("sklearn.linear_model")
    table, target = _data(n=80)  # ≤ 100 rows: the background is all of them
    X = _matrix(table)
    model = linear_model.LinearRegression().fit(X, target)

    importance = compute_importance(model, table, FEATURES)

    expected = np.abs(model.coef_) * np.abs(X - X.mean(axis=0)).mean(axis=0)
    np.testing.assert_allclose([importance[f] for f in FEATURES], expected, atol=1e-6, rtol=0)
    assert importance["a"] > importance["b"] > importance["c"]


def test_pipeline_gets_raw_text_columns() -> None:
    # One-hot country + linear regression is additive, so exact SHAP has a closed form too:
    # φ_country(x) = w[country(x)] - mean over the background of w[country].
    pytest.importorskip("shap")
    pd = pytest.importorskip("pandas")
    compose = pytest.importorskip("sklearn.compose")
    pipeline = pytest.importorskip("sklearn.pipeline")
    preprocessing = pytest.importorskip("sklearn.preprocessing")
    linear_model = pytest.importorskip("sklearn.linear_model")
    rng = np.random.default_rng(3)
    n = 90
    country = rng.choice(["de", "fr", "us"], size=n)
    amount = rng.normal(size=n)
    target = amount + np.select([country == "de", country == "fr"], [2.0, -1.0], 0.0)
    frame = pd.DataFrame({"amount": amount, "country": country})
    encode = compose.make_column_transformer(
        (preprocessing.OneHotEncoder(), ["country"]), remainder="passthrough"
    )
    model = pipeline.make_pipeline(encode, linear_model.LinearRegression()).fit(frame, target)
    table = pa.table({"country": country, "amount": amount})  # columns in another order

    importance = compute_importance(model, table, ["country", "amount"])

    w = model[-1].coef_  # country=de, country=fr, country=us, amount
    by_country = dict(zip(["de", "fr", "us"], w[:3], strict=True))
    effect = np.array([by_country[c] for c in country])
    assert importance["country"] == pytest.approx(np.abs(effect - effect.mean()).mean(), abs=1e-6)
    assert importance["amount"] == pytest.approx(
        abs(w[3]) * np.abs(amount - amount.mean()).mean(), abs=1e-6
    )


def test_a_listed_feature_the_model_does_not_take_gets_zero() -> None:
    pytest.importorskip("shap")
    pd = pytest.importorskip("pandas")
    ensemble = pytest.importorskip("sklearn.ensemble")
    table, target = _data()
    frame = table.select(["a", "b"]).to_pandas()
    model = ensemble.RandomForestRegressor(n_estimators=10, random_state=0).fit(frame, target)
    assert isinstance(frame, pd.DataFrame)

    importance = compute_importance(model, table, FEATURES)

    assert importance["c"] == 0.0
    assert importance["a"] > importance["b"] > 0


def test_sampling_is_seeded_and_capped() -> None:
    pytest.importorskip("shap")
    ensemble = pytest.importorskip("sklearn.ensemble")
    table, target = _data()
    model = ensemble.RandomForestRegressor(n_estimators=10, random_state=0)
    model.fit(_matrix(table), target)
    first = compute_importance(model, table, FEATURES, max_rows=50, seed=7)
    assert compute_importance(model, table, FEATURES, max_rows=50, seed=7) == first
    assert compute_importance(model, table, FEATURES, max_rows=50, seed=8) != first


def test_errors_for_data_the_model_cannot_be_explained_on() -> None:
    pytest.importorskip("shap")
    ensemble = pytest.importorskip("sklearn.ensemble")
    table, target = _data()
    X = _matrix(table)
    regressor = ensemble.RandomForestRegressor(n_estimators=5, random_state=0).fit(X, target)
    with pytest.raises(TripwireError, match="no column 'c'"):
        compute_importance(regressor, table.drop_columns(["c"]), FEATURES)
    with pytest.raises(TripwireError, match="no rows"):
        compute_importance(regressor, table.slice(0, 0), FEATURES)
    text = table.set_column(2, "c", pa.array(["x"] * table.num_rows))
    with pytest.raises(TripwireError, match="'c' hold text"):
        compute_importance(regressor, text, FEATURES)
    three_classes = np.digitize(target, [-1.0, 1.0])
    classifier = ensemble.RandomForestClassifier(n_estimators=5, random_state=0)
    classifier.fit(X, three_classes)
    with pytest.raises(TripwireError, match="3 outputs"):
        compute_importance(classifier, table, FEATURES)


# --- the command ---------------------------------------------------------------------------


def test_command_writes_the_csv_the_config_reads(tmp_path: Path) -> None:
    pytest.importorskip("shap")
    joblib = pytest.importorskip("joblib")
    ensemble = pytest.importorskip("sklearn.ensemble")
    table, target = _data()
    pq.write_table(table, tmp_path / "reference.parquet")
    model = ensemble.GradientBoostingRegressor(n_estimators=30, random_state=0)
    joblib.dump(model.fit(_matrix(table), target), tmp_path / "model.joblib")
    config_path = _write_config(tmp_path, "reference: reference.parquet\n")

    result = CliRunner().invoke(
        importance_command,
        ["--config", str(config_path), "--model", str(tmp_path / "model.joblib")],
    )

    assert result.exit_code == 0, result.output
    assert "importance: importance.csv" in result.output
    assert "top quartile" in result.output
    csv_lines = (tmp_path / "importance.csv").read_text(encoding="utf-8").splitlines()
    assert [line.split(",")[0] for line in csv_lines[1:]] == ["a", "b", "c"]
    with config_path.open("a", encoding="utf-8") as handle:
        handle.write("importance: importance.csv\n")
    resolved = load_config(config_path).resolve_importance()
    assert resolved == compute_importance(model, table, FEATURES)


def test_command_takes_reference_and_out(tmp_path: Path) -> None:
    pytest.importorskip("shap")
    table, _ = _data(30)
    table.to_pandas().to_csv(tmp_path / "ref.csv", index=False)
    (tmp_path / "model.pkl").write_bytes(pickle.dumps(_Model()))
    out = tmp_path / "out" / "imp.csv"
    out.parent.mkdir()

    result = CliRunner().invoke(
        importance_command,
        [
            "--config",
            str(_write_config(tmp_path)),
            "--model",
            str(tmp_path / "model.pkl"),
            "--reference",
            str(tmp_path / "ref.csv"),
            "--out",
            str(out),
        ],
    )

    assert result.exit_code == 0, result.output
    assert "importance: out/imp.csv" in result.output
    assert out.read_text(encoding="utf-8").startswith("feature,importance\na,")


def test_command_without_a_reference_says_so(tmp_path: Path) -> None:
    (tmp_path / "model.pkl").write_bytes(pickle.dumps(_Model()))
    result = CliRunner().invoke(
        importance_command,
        ["--config", str(_write_config(tmp_path)), "--model", str(tmp_path / "model.pkl")],
    )
    assert isinstance(result.exception, TripwireError)
    assert "no --reference" in str(result.exception)
