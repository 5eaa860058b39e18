"""Per-feature thresholds from normal history: the answer to "static thresholds are lazy".

For every rule with ``threshold: calibrated``, each watched series (feature × segment) gets the
``quantile`` (default 95th percentile) of its values over the last ``days`` normal windows,
never below a floor. Windows inside an incident on the same feature and segment, or marked
abnormal, are not normal and are left out.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

import numpy as np
import pyarrow as pa

from tripwire.alerts.engine import pivot, rule_features
from tripwire.config import AlertRule, ModelConfig
from tripwire.layers.thresholds import DEFAULTS

MIN_NORMAL_WINDOWS = 7


@dataclass(frozen=True)
class Calibration:
    """A calibrated threshold and where it came from."""

    metric: str
    feature: str
    segment: str
    threshold: float
    quantile: float
    floor: float
    windows_used: list[datetime]


def floor_for(rule: AlertRule) -> float:
    """The rule's floor, else the metric's default watch level, else 0."""
    if rule.floor is not None:
        return rule.floor
    default = DEFAULTS.get(rule.metric)
    return default.watch if default is not None and default.basis == "absolute" else 0.0


def calibrate(
    config: ModelConfig,
    history: pa.Table,
    windows: list[datetime],
    window: timedelta,
    importance: dict[str, float],
    excluded: dict[tuple[str, str], set[datetime]],
    days: int = 14,
    quantile: float = 0.95,
) -> tuple[list[Calibration], list[str]]:
    """Thresholds for every calibrated rule's series, and notes on series left uncalibrated.

    ``windows`` are the stored window starts of length ``window``; the last ``days`` worth
    are used.

    ``excluded`` maps (feature, segment) to window starts that are not normal; the key
    ``("*", "*")`` excludes windows for every series (abnormal days).
    """
    recent = windows[-max(1, round(timedelta(days=days) / window)) :]
    found: list[Calibration] = []
    notes: list[str] = []
    for rule in config.alerts:
        if rule.threshold != "calibrated":
            continue
        m = pivot(history, rule, rule_features(rule, config, importance), recent)
        if m is None:
            notes.append(f"{rule.name}: no {rule.metric} values in the last {days} days")
            continue
        floor = floor_for(rule)
        everywhere = excluded.get(("*", "*"), set())
        for i, (feature, segment) in enumerate(m.keys):
            skip = everywhere | excluded.get((feature, segment), set())
            keep = [t for t, start in enumerate(recent) if start not in skip]
            values = m.value[i, keep]
            normal = ~np.isnan(values) & (m.n[i, keep] >= rule.min_samples) & ~m.withheld[i, keep]
            if normal.sum() < MIN_NORMAL_WINDOWS:
                notes.append(
                    f"{rule.name}: {feature or rule.metric} [{segment}] has {int(normal.sum())} "
                    f"normal windows, calibration needs {MIN_NORMAL_WINDOWS}"
                )
                continue
            level = float(np.quantile(values[normal], quantile))
            found.append(
                Calibration(
                    metric=rule.metric,
                    feature=feature,
                    segment=segment,
                    threshold=max(level, floor),
                    quantile=quantile,
                    floor=floor,
                    windows_used=[recent[keep[j]] for j in np.flatnonzero(normal)],
                )
            )
    return found, notes
