"""Human-friendly durations such as ``"30s"``, ``"15m"``, ``"1h"``, ``"7d"`` or ``"2w"``.

Configs speak in these short strings; the code works with :class:`datetime.timedelta`.

>>> parse_duration("3d")
datetime.timedelta(days=3)
>>> format_duration(parse_duration("90m"))
'90m'
"""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Annotated, Any

from pydantic import BeforeValidator, PlainSerializer

# Ordered largest first so format_duration picks the largest unit that divides exactly.
_UNIT_SECONDS: dict[str, int] = {
    "w": 7 * 24 * 3600,
    "d": 24 * 3600,
    "h": 3600,
    "m": 60,
    "s": 1,
}

_PATTERN = re.compile(r"^\s*(\d+)\s*([smhdw])\s*$")
_EXPECTED = (
    "a whole number followed by a unit s, m, h, d or w (e.g. '30s', '15m', '1h', '7d', '2w')"
)


def parse_duration(text: str) -> timedelta:
    """Parse ``"<n><unit>"`` where unit is one of ``s m h d w``.

    >>> parse_duration("30s")
    datetime.timedelta(seconds=30)
    >>> parse_duration("2w")
    datetime.timedelta(days=14)
    >>> parse_duration("3 days")
    Traceback (most recent call last):
    ...
    ValueError: invalid duration '3 days': expected a whole number followed by a unit ...
    """
    match = _PATTERN.match(text)
    if match is None:
        raise ValueError(f"invalid duration {text!r}: expected {_EXPECTED}")
    amount, unit = match.groups()
    return timedelta(seconds=int(amount) * _UNIT_SECONDS[unit])


def format_duration(td: timedelta) -> str:
    """Inverse of :func:`parse_duration`, using the largest unit that divides exactly.

    >>> format_duration(timedelta(days=14))
    '2w'
    >>> format_duration(timedelta(hours=36))
    '36h'
    >>> format_duration(timedelta(0))
    '0d'
    """
    if td < timedelta(0) or td.microseconds:
        raise ValueError(f"cannot format {td!r}: only whole, non-negative seconds are supported")
    seconds = int(td.total_seconds())
    if seconds == 0:
        # "0d" reads better than "0w" for the common "no lag" case.
        return "0d"
    for unit, size in _UNIT_SECONDS.items():
        if seconds % size == 0:
            return f"{seconds // size}{unit}"
    raise AssertionError("unreachable: every whole number of seconds is divisible by 1")


def _coerce_duration(value: Any) -> Any:
    # Strings are our syntax; a timedelta (e.g. built in Python) passes through untouched.
    # Bare numbers are rejected on purpose: "is 3 seconds or 3 days?" should never be guessed.
    if isinstance(value, str):
        return parse_duration(value)
    if isinstance(value, timedelta):
        return value
    raise ValueError(f"invalid duration {value!r}: expected {_EXPECTED}")


Duration = Annotated[
    timedelta,
    BeforeValidator(_coerce_duration),
    PlainSerializer(format_duration, return_type=str),
]
"""A :class:`timedelta` field that reads and writes the short string form."""
