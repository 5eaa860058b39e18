"""tripwire: monitoring for machine-learning models in production."""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from tripwire.logger import Logger
    from tripwire.monitor import Monitor
    from tripwire.report import Report

__all__ = ["Logger", "Monitor", "Report"]
__version__ = "0.1.0"

# Imported on first use: a serving process that logs with tripwire.Logger, and the collector's
# parse workers, never load the statistics (scipy, the profiles) they do not run.
_HOMES = {"Logger": "tripwire.logger", "Monitor": "tripwire.monitor", "Report": "tripwire.report"}


def __getattr__(name: str) -> object:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(home), name)
