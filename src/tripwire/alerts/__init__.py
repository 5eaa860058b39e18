"""Alerts: rules over the metric history, incidents, calibration, routing and delivery."""
