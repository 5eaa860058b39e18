"""Mergeable profiles: reference bins and window counts, from which every metric is computed."""
