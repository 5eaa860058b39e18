"""The metric row: the one record every layer produces and everything downstream reads."""

from __future__ import annotations

import math
from typing import Literal

from pydantic import BaseModel, ConfigDict, field_validator

Layer = Literal["inputs", "predictions", "performance", "cost"]
Status = Literal["ok", "watch", "alert", "info", "no_data", "insufficient_labels", "error"]
LAYERS: tuple[Layer, ...] = ("inputs", "predictions", "performance", "cost")
# Worst first: a feature or layer shows the worst status among its rows.
SEVERITY: dict[str, int] = {
    "alert": 0,
    "error": 1,
    "watch": 2,
    "insufficient_labels": 3,
    "no_data": 4,
    "ok": 5,
    "info": 6,
}
# Statuses that are a verdict; the others (info, no_data, insufficient_labels) show a value, if
# any, without one, and no alert rule, digest, report badge or gate counts them.
VERDICTS: tuple[Status, ...] = ("ok", "watch", "alert", "error")


class MetricRow(BaseModel):
    """One metric of one feature (or output) of one segment in one window.

    ``status`` is a verdict (ok, watch, alert) when the metric has a threshold; ``info`` when it
    is reported without one; ``no_data`` or ``error`` with a ``reason`` when no value could be
    computed; ``insufficient_labels`` for a performance metric whose labelled rows are too few
    or too small a share of the window for a verdict (the value is still shown).
    ``threshold`` is the value at which the metric turns ``alert``. ``bound`` is the certified
    absolute error of a value computed from profiles (KS, Wasserstein, AUC).
    ``reference`` is the reference window's value of the same metric, where one exists.
    ``ci_low`` and ``ci_high`` bound a confidence interval for the value (performance and proxy
    metrics); a default verdict of ``alert`` needs the whole interval past ``threshold``.
    ``coverage`` is the share of the window's rows that were labelled (performance metrics):
    ``n`` labelled rows out of ``n / coverage``.
    """

    model_config = ConfigDict(frozen=True)

    layer: Layer
    metric: str
    feature: str | None = None
    segment: str = "all"
    value: float | None
    status: Status
    threshold: float | None = None
    reason: str | None = None
    n: int = 0
    importance: float | None = None
    bound: float | None = None
    reference: float | None = None
    ci_low: float | None = None
    ci_high: float | None = None
    coverage: float | None = None

    @field_validator(
        "value", "threshold", "bound", "reference", "ci_low", "ci_high", "coverage", mode="before"
    )
    @classmethod
    def _nan_is_none(cls, v: float | None) -> float | None:
        # JSON has no NaN; a missing value is None, and the reason says why.
        return None if v is None or (isinstance(v, float) and math.isnan(v)) else float(v)
