"""Capped exponential backoff for retrying a batch after a retriable failure."""

from __future__ import annotations

import random
from dataclasses import dataclass

#: First wait after a failure, in seconds.
DEFAULT_BASE_S = 0.05
#: Longest wait between attempts, in seconds: long enough not to hammer a
#: restarting Redis, short enough that recovery is noticed within seconds.
DEFAULT_CAP_S = 5.0
#: Share of each wait that is randomised, so workers don't retry in lockstep.
DEFAULT_JITTER = 0.2


@dataclass(frozen=True)
class Backoff:
    """Wait ``min(cap, base * 2**attempt)`` seconds, +/- ``jitter`` of it.

    Attributes:
        base_s: First wait, in seconds.
        cap_s: Longest wait, in seconds.
        jitter: Fraction (0-1) of the wait that is random.
    """

    base_s: float = DEFAULT_BASE_S
    cap_s: float = DEFAULT_CAP_S
    jitter: float = DEFAULT_JITTER

    def delay_s(self, attempt: int) -> float:
        """Return the wait before retry number ``attempt`` (0 = first retry)."""
        # Cap the exponent too: 2**attempt overflows float after ~1000 retries.
        wait = min(self.cap_s, self.base_s * 2.0 ** min(attempt, 64))
        return wait * (1.0 - self.jitter * random.random())
