"""Reports: the metric rows of one window, as data, JSON or a self-contained HTML file."""

from tripwire.report.model import Histogram, Report

__all__ = ["Histogram", "Report"]
