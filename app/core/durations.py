"""Durations as people write them in a schedule: `30s`, `5m`, `1h30m`, `2d`. Parsed here
once (the API stores seconds and Temporal takes a timedelta) and printed back the same way,
so what GET shows reads like what was POSTed."""

from __future__ import annotations

import re
from datetime import timedelta

_UNITS = {"d": 86_400, "h": 3_600, "m": 60, "s": 1}
_DURATION = re.compile(r"(?:(?P<d>\d+)d)?(?:(?P<h>\d+)h)?(?:(?P<m>\d+)m)?(?:(?P<s>\d+)s)?")


def parse_duration(text: str) -> timedelta:
    """`1h30m` -> 90 minutes. Raises ValueError with the accepted form in its message."""
    match = _DURATION.fullmatch(text.strip().lower())
    if not text.strip() or match is None or not any(match.groups()):
        raise ValueError(
            f"{text!r} is not a duration: write whole numbers with units d, h, m, s in that order, "
            "e.g. '30s', '5m', '1h30m', '1d'"
        )
    return timedelta(seconds=sum(int(v) * _UNITS[k] for k, v in match.groupdict().items() if v))


def format_duration(value: timedelta | float) -> str:
    """90 minutes -> `1h30m`; zero -> `0s`."""
    seconds = int(value.total_seconds() if isinstance(value, timedelta) else value)
    parts = []
    for unit, size in _UNITS.items():
        count, seconds = divmod(seconds, size)
        if count:
            parts.append(f"{count}{unit}")
    return "".join(parts) or "0s"
