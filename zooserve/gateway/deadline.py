"""A request's deadline: one point in time that every step (load, backend call) takes its timeout from."""

from __future__ import annotations

import time

from .errors import DeadlineExceeded


class Deadline:
    def __init__(self, seconds: float):
        self.seconds = seconds
        self.at = time.monotonic() + seconds

    def remaining(self) -> float:
        """Seconds left; DeadlineExceeded when none are."""
        left = self.at - time.monotonic()
        if left <= 0:
            raise DeadlineExceeded(f"no answer within the deadline of {self.seconds:g} s")
        return left
