"""Pure statistics for tripwire: arrays in, numbers out.

Drift distances and tests (PSI, KS, Wasserstein, Jensen-Shannon, chi-squared, Hellinger)
and model-quality metrics. NaN means null everywhere and is dropped.
"""

from .chi2 import Chi2Result, chi2_categorical, chi2_contingency
from .classification import (
    accuracy,
    brier,
    confusion_counts,
    ece,
    f1,
    log_loss,
    precision,
    recall,
    roc_auc,
)
from .hellinger import hellinger
from .jensen_shannon import js_categorical, js_distance, js_numeric
from .ks import KSResult, ks, ks_pvalue
from .psi import bucket_counts, psi, psi_breakpoints, psi_from_counts
from .regression import mae, r2, rmse
from .wasserstein import wasserstein, wasserstein_norm

__all__ = [
    "Chi2Result",
    "KSResult",
    "accuracy",
    "brier",
    "bucket_counts",
    "chi2_categorical",
    "chi2_contingency",
    "confusion_counts",
    "ece",
    "f1",
    "hellinger",
    "js_categorical",
    "js_distance",
    "js_numeric",
    "ks",
    "ks_pvalue",
    "log_loss",
    "mae",
    "precision",
    "psi",
    "psi_breakpoints",
    "psi_from_counts",
    "r2",
    "recall",
    "rmse",
    "roc_auc",
    "wasserstein",
    "wasserstein_norm",
]
