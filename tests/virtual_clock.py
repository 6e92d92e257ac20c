"""The virtual clock the load, capacity and batching tests drive their runners with."""

from __future__ import annotations


class VirtualClock:
    """Time that moves only when the body works or the generator sleeps.

    *oversleep_ns* is added to every sleep that had to wait: a late generator.
    """

    def __init__(self, oversleep_ns: int = 0) -> None:
        self.now = 0
        self.oversleep_ns = oversleep_ns

    def __call__(self) -> int:
        return self.now

    def sleep_until(self, target_ns: int) -> None:
        if target_ns > self.now:
            self.now = target_ns + self.oversleep_ns

    def advance(self, ns: int) -> None:
        self.now += ns
