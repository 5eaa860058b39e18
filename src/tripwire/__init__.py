"""tripwire: monitoring for machine-learning models in production."""

from tripwire.monitor import Monitor
from tripwire.report import Report

__all__ = ["Monitor", "Report"]
__version__ = "0.1.0"
