"""The alert policy over a matrix of verdicts: persistence, resolution, flapping.

Pure numpy: ``breach`` and ``judged`` are boolean matrices of series × windows (a series is one
feature in one segment). A window without a verdict (too few rows, no value) neither extends
nor breaks a streak. The same function serves "what fires now" and "what would have fired":
alert state is derived from history, never remembered.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

Bools = NDArray[np.bool_]


@dataclass(frozen=True)
class Episode:
    """One incident on one series, as window indices.

    ``start`` is the first breaching window of the streak that opened it, ``opened`` the window
    in which the streak reached the persistence, ``last_breach`` its latest breaching window,
    ``resolved`` the window that completed ``resolve_after`` clean windows (None while open),
    and ``reopened`` how often it re-breached during its cooldown and was kept as one incident.
    """

    series: int
    start: int
    opened: int
    last_breach: int
    resolved: int | None
    reopened: int


def episodes(
    breach: Bools, judged: Bools, persistence: int, resolve_after: int, cooldown: int
) -> list[Episode]:
    """Incidents implied by the verdicts, oldest first.

    Parameters
    ----------
    breach, judged
        ``breach[s, t]``: series ``s`` is past its threshold in window ``t``; ``judged[s, t]``:
        it had a verdict at all. ``breach`` implies ``judged``.
    persistence
        Consecutive breaching windows needed to open an incident (``3d`` over days: 3).
    resolve_after
        Consecutive clean windows that resolve it.
    cooldown
        A series that breaches again within this many windows of a resolution reopens the
        same incident (flapping) instead of opening a new one.

    >>> b = np.array([[0, 1, 1, 1, 0, 0, 0, 1, 0, 0]], dtype=bool)
    >>> [(e.start, e.opened, e.resolved) for e in episodes(b, np.ones_like(b), 2, 2, 0)]
    [(1, 2, 5)]
    """
    n_series, n_windows = breach.shape
    streak = np.zeros(n_series, dtype=np.int64)
    streak_start = np.zeros(n_series, dtype=np.int64)
    clean = np.zeros(n_series, dtype=np.int64)
    current = np.full(n_series, -1, dtype=np.int64)  # index into `found` of the open incident
    last = np.full(n_series, -1, dtype=np.int64)  # index of the series' latest incident
    found: list[dict[str, int | None]] = []
    for t in range(n_windows):
        b, clear = breach[:, t], judged[:, t] & ~breach[:, t]
        streak_start = np.where(b & (streak == 0), t, streak_start)
        streak = np.where(b, streak + 1, np.where(clear, 0, streak))
        clean = np.where(clear, clean + 1, np.where(b, 0, clean))
        is_open = current >= 0
        for s in np.flatnonzero(b & is_open):
            found[current[s]]["last_breach"] = t
        for s in np.flatnonzero(b & ~is_open & (streak >= persistence)):
            previous = found[last[s]] if last[s] >= 0 else None
            resolved = previous["resolved"] if previous else None
            if previous is not None and resolved is not None and t - resolved <= cooldown:
                previous["resolved"] = None
                previous["last_breach"] = t
                previous["reopened"] = (previous["reopened"] or 0) + 1
                current[s] = last[s]
                continue
            found.append(
                {
                    "series": int(s),
                    "start": int(streak_start[s]),
                    "opened": t,
                    "last_breach": t,
                    "resolved": None,
                    "reopened": 0,
                }
            )
            current[s] = last[s] = len(found) - 1
        for s in np.flatnonzero((current >= 0) & clear & (clean >= resolve_after)):
            found[current[s]]["resolved"] = t
            current[s] = -1
    return [Episode(**e) for e in found]  # type: ignore[arg-type]
