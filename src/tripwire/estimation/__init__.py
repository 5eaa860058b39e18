"""Performance estimation without labels: arrays in, numbers out.

Confidence-based performance estimation (CBPE) for binary and multiclass classifiers and
direct loss estimation (DLE) for regression. Each follows the scikit-learn estimator contract:
parameters in the constructor, ``fit`` on a labelled reference, then ``estimate`` on each
window, returning an :class:`Estimate` of values with standard errors.
"""

from .calibration import CalibrationCheck, check_calibration
from .cbpe import CBPE
from .dle import DLE
from .estimate import Estimate
from .expected_auc import expected_roc_auc
from .isotonic import IsotonicCalibrator
from .multiclass import MulticlassCBPE

__all__ = [
    "CBPE",
    "DLE",
    "CalibrationCheck",
    "Estimate",
    "IsotonicCalibrator",
    "MulticlassCBPE",
    "check_calibration",
    "expected_roc_auc",
]
