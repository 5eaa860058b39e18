"""tripwire: monitoring for machine-learning models in production."""

from tripwire.logger import Logger
from tripwire.monitor import Monitor
from tripwire.report import Report

__all__ = ["Logger", "Monitor", "Report"]
__version__ = "0.1.0"
