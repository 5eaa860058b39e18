"""The alert policy (persistence, resolution, flapping) on hand-built verdict matrices.

Every expectation below is worked out by hand from the rules: an incident opens in the window
where a streak of consecutive breaches reaches the persistence and starts at the streak's first
window; a window without a verdict neither extends nor breaks a streak nor counts as clean; it
resolves in the window that completes ``resolve_after`` consecutive clean windows; reaching the
persistence again within ``cooldown`` windows of a resolution reopens the same incident.
The property test at the end checks the vectorized state machine against a plain loop.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pytest

from tripwire.alerts.policy import Episode, episodes

# (series, start, opened, last_breach, resolved, reopened)
Row = tuple[int, int, int, int, int | None, int]


def bools(*rows: str) -> np.ndarray:
    """A series × windows matrix from strings like ``"0111.00"`` ('.' counts as 0)."""
    return np.array([[c == "1" for c in row] for row in rows], dtype=bool)


def run(
    breach: np.ndarray,
    judged: np.ndarray | None = None,
    *,
    persistence: int = 1,
    resolve_after: int = 1,
    cooldown: int = 0,
) -> list[Row]:
    judged = np.ones_like(breach) if judged is None else judged
    found = episodes(breach, judged, persistence, resolve_after, cooldown)
    assert all(isinstance(e, Episode) for e in found)
    return [(e.series, e.start, e.opened, e.last_breach, e.resolved, e.reopened) for e in found]


def test_docstring_example_opens_on_persistence_and_resolves_after_clean_windows():
    breach = bools("0111000100")
    # Streak 1..3 reaches 2 in window 2; windows 4 and 5 are the two clean ones. The lone
    # breach in window 7 never reaches the persistence.
    assert run(breach, persistence=2, resolve_after=2) == [(0, 1, 2, 3, 5, 0)]


def test_opens_in_the_window_reaching_persistence_and_starts_at_the_streak():
    breach = bools("0011110000")
    assert run(breach, persistence=3, resolve_after=2) == [(0, 2, 4, 5, 7, 0)]


def test_a_streak_shorter_than_persistence_opens_nothing():
    assert run(bools("1101100110"), persistence=3) == []


def test_a_clean_window_breaks_the_streak():
    # Without the clean window 2 the breaches 0, 1, 3 would reach persistence 3.
    assert run(bools("110100"), persistence=3) == []


def test_persistence_one_opens_in_the_breaching_window():
    assert run(bools("00100"), persistence=1, resolve_after=1) == [(0, 2, 2, 2, 3, 0)]


def test_a_window_without_verdict_neither_extends_nor_breaks_a_streak():
    breach = bools("101100")
    judged = bools("101111")
    # Window 1 has no verdict: the streak 0, 2, 3 reaches 3 in window 3 and starts in window 0.
    assert run(breach, judged, persistence=3, resolve_after=2) == [(0, 0, 3, 3, 5, 0)]
    # Had window 1 been judged clean, the streak would have been broken.
    assert run(breach, np.ones_like(breach), persistence=3, resolve_after=2) == []


def test_unjudged_windows_before_a_streak_do_not_move_its_start():
    breach = bools("0011")
    judged = bools("0011")
    assert run(breach, judged, persistence=2) == [(0, 2, 3, 3, None, 0)]


def test_a_window_without_verdict_does_not_count_as_clean():
    breach = bools("1100000")
    judged = bools("1110011")
    # Clean windows: 2, then 5 (3 and 4 have no verdict) completes two.
    assert run(breach, judged, persistence=2, resolve_after=2) == [(0, 0, 1, 1, 5, 0)]


def test_a_breach_while_open_resets_the_clean_count_and_moves_last_breach():
    breach = bools("110100")
    # Window 2 is clean, window 3 breaches again, 4 and 5 are the two clean windows.
    assert run(breach, persistence=2, resolve_after=2) == [(0, 0, 1, 3, 5, 0)]


def test_breaching_to_the_end_leaves_the_incident_open():
    assert run(bools("0011111"), persistence=3, resolve_after=2) == [(0, 2, 4, 6, None, 0)]


def test_too_few_clean_windows_at_the_end_leave_it_open():
    assert run(bools("11100"), persistence=2, resolve_after=3) == [(0, 0, 1, 2, None, 0)]


def test_rebreach_within_cooldown_reopens_after_it_a_new_incident_opens():
    breach = bools("1001000010")
    # Open 0, resolved 1; window 3 is 2 windows after the resolution (cooldown 2): reopened,
    # resolved again in 4. Window 8 is 4 windows after it: a new incident.
    assert run(breach, persistence=1, resolve_after=1, cooldown=2) == [
        (0, 0, 0, 3, 4, 1),
        (0, 8, 8, 8, 9, 0),
    ]


def test_rebreach_one_window_past_the_cooldown_opens_a_new_incident():
    breach = bools("100010")
    assert run(breach, persistence=1, resolve_after=1, cooldown=2) == [
        (0, 0, 0, 0, 1, 0),
        (0, 4, 4, 4, 5, 0),
    ]


def test_cooldown_zero_never_reopens():
    breach = bools("1010")
    assert run(breach, persistence=1, resolve_after=1, cooldown=0) == [
        (0, 0, 0, 0, 1, 0),
        (0, 2, 2, 2, 3, 0),
    ]


def test_a_reopened_incident_stays_open_when_it_does_not_resolve_again():
    breach = bools("10011")
    # Resolved in 1, reopened in 3 (cooldown 3), still breaching at the end.
    assert run(breach, persistence=1, resolve_after=1, cooldown=3) == [(0, 0, 0, 4, None, 1)]


def test_flapping_reopens_are_counted():
    breach = bools("10101000")
    assert run(breach, persistence=1, resolve_after=1, cooldown=1) == [(0, 0, 0, 4, 5, 2)]


def test_a_rebreach_must_reach_persistence_again_to_reopen():
    # The lone breach in window 3 (cooldown 3 after the resolution in 2) is too short.
    assert run(bools("11010000"), persistence=2, resolve_after=1, cooldown=3) == [
        (0, 0, 1, 1, 2, 0)
    ]
    # Windows 3 and 4 reach persistence 2 in window 4, two windows after the resolution.
    assert run(bools("11011000"), persistence=2, resolve_after=1, cooldown=3) == [
        (0, 0, 1, 4, 5, 1)
    ]


def test_clean_windows_before_an_incident_do_not_resolve_it_early():
    breach = bools("10000100")
    # The second incident (window 5, past the cooldown 0) needs two fresh clean windows.
    assert run(breach, persistence=1, resolve_after=2, cooldown=0) == [
        (0, 0, 0, 0, 2, 0),
        (0, 5, 5, 5, 7, 0),
    ]


def test_series_are_independent_and_listed_oldest_first():
    breach = bools(
        "00011100",  # series 0: opens in 4
        "11000000",  # series 1: opens in 1
        "00000000",  # series 2: nothing
        "01100110",  # series 3: opens in 2, resolves in 3, reopens in 6 (cooldown 4)
    )
    judged = np.ones_like(breach)
    judged[2, :] = False
    assert run(breach, judged, persistence=2, resolve_after=1, cooldown=4) == [
        (1, 0, 1, 1, 2, 0),
        (3, 1, 2, 6, 7, 1),
        (0, 3, 4, 5, 6, 0),
    ]
    # Each series alone gives the same episodes.
    for s in range(4):
        alone = run(breach[s : s + 1], judged[s : s + 1], persistence=2, cooldown=4)
        together = [row for row in run(breach, judged, persistence=2, cooldown=4) if row[0] == s]
        assert [(s, *row[1:]) for row in alone] == together


def test_no_series_or_no_windows():
    assert run(np.zeros((0, 5), dtype=bool)) == []
    assert run(np.zeros((3, 0), dtype=bool)) == []


# --- property: the vectorized policy against a plain loop ---------------------------------


@dataclass
class _Open:
    series: int
    start: int
    opened: int
    last_breach: int
    resolved: int | None = None
    reopened: int = 0


def reference_episodes(
    breach: list[list[bool]],
    judged: list[list[bool]],
    persistence: int,
    resolve_after: int,
    cooldown: int,
) -> list[Row]:
    """The policy written as a loop over series and windows."""
    found: list[_Open] = []
    for s, (b_row, j_row) in enumerate(zip(breach, judged, strict=True)):
        streak, streak_start, clean = 0, 0, 0
        current: _Open | None = None
        latest: _Open | None = None
        for t, (b, j) in enumerate(zip(b_row, j_row, strict=True)):
            if not j:
                continue  # no verdict: nothing changes
            if b:
                if streak == 0:
                    streak_start = t
                streak += 1
                clean = 0
                if current is not None:
                    current.last_breach = t
                elif streak >= persistence:
                    if (
                        latest is not None
                        and latest.resolved is not None
                        and t - latest.resolved <= cooldown
                    ):
                        latest.resolved = None
                        latest.last_breach = t
                        latest.reopened += 1
                        current = latest
                    else:
                        current = latest = _Open(s, streak_start, t, t)
                        found.append(current)
            else:
                streak = 0
                clean += 1
                if current is not None and clean >= resolve_after:
                    current.resolved = t
                    current = None
    found.sort(key=lambda e: (e.opened, e.series))
    return [(e.series, e.start, e.opened, e.last_breach, e.resolved, e.reopened) for e in found]


def _random_case(seed: int) -> tuple[np.ndarray, np.ndarray, int, int, int]:
    rng = np.random.default_rng(seed)
    n_series, n_windows = int(rng.integers(1, 7)), int(rng.integers(1, 60))
    judged = rng.random((n_series, n_windows)) < rng.uniform(0.5, 1.0)
    # Per-series breach rates from rare to frequent give long streaks and flapping alike.
    rate = rng.uniform(0.05, 0.9, size=(n_series, 1))
    breach = (rng.random((n_series, n_windows)) < rate) & judged
    persistence = int(rng.integers(1, 5))
    resolve_after = int(rng.integers(1, 4))
    cooldown = int(rng.integers(0, 7))
    return breach, judged, persistence, resolve_after, cooldown


SEEDS = range(80)


@pytest.mark.parametrize("seed", SEEDS)
def test_matches_a_plain_loop_on_random_verdicts(seed):
    breach, judged, persistence, resolve_after, cooldown = _random_case(seed)
    expected = reference_episodes(
        breach.tolist(), judged.tolist(), persistence, resolve_after, cooldown
    )
    got = run(
        breach,
        judged,
        persistence=persistence,
        resolve_after=resolve_after,
        cooldown=cooldown,
    )
    assert got == expected
    for series, start, opened, last, resolved, _ in got:
        assert start <= opened <= last
        assert breach[series, start] and breach[series, opened] and breach[series, last]
        assert resolved is None or resolved > last


def test_the_random_cases_reach_reopens_and_open_incidents():
    # Guard against a generator that never exercises the interesting branches.
    reopens = still_open = 0
    for seed in SEEDS:
        for e in episodes(*_random_case(seed)):
            reopens += e.reopened > 0
            still_open += e.resolved is None
    assert reopens > 5 and still_open > 5
