"""Progress of long work (a soak, a long measurement) without flooding a CI log.

On a terminal one status line is rewritten in place, a few times a second at most.
Anywhere else (a CI log, a pipe) a line is printed at the start, at each tenth of the
run but never more often than ``log_every_s``, and at the end -- about a dozen lines
for a 30-minute soak, two for a 30-second one.  The writer is injected, so the
cadence is tested with a fake clock and nothing here imports pytest.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

TTY_EVERY_S = 0.5
LOG_EVERY_S = 30.0
LOG_STEPS = 10


class ProgressSink(Protocol):
    """Where progress lines go: the plugin adapts pytest's terminal reporter to this."""

    is_tty: bool

    def line(self, text: str) -> None:
        """A permanent line (non-terminal output)."""

    def status(self, text: str) -> None:
        """Replace the current status line (terminal output)."""

    def done(self, text: str) -> None:
        """The final line of this piece of work; later output starts on a fresh line."""


@dataclass
class Progress:
    """Progress of one piece of work of known total length in seconds."""

    sink: ProgressSink
    label: str
    total_s: float
    clock: Callable[[], float] = time.monotonic
    tty_every_s: float = TTY_EVERY_S
    log_every_s: float = LOG_EVERY_S
    delay_s: float = 0.0  # say nothing about work that is over sooner than this
    _last_emit: float | None = field(default=None, init=False)
    _last_step: int = field(default=0, init=False)
    _started: bool = field(default=False, init=False)

    def start(self, text: str = "") -> None:
        """Announce the work; on a terminal the status line appears at once."""
        self._started = True
        self._last_emit = self.clock()
        message = f"{self.label}: {text}" if text else f"{self.label}: started"
        if self.sink.is_tty:
            self.sink.status(message)
        else:
            self.sink.line(message)

    def update(self, elapsed_s: float, text: str | Callable[[], str]) -> bool:
        """Report *elapsed_s* of the total; returns whether a line was written.

        *text* may be a callable, called only when a line is due: the caller's figures
        (a fitted slope, say) are then computed a few times a second at most.
        """
        if elapsed_s < self.delay_s:
            return False
        if not self._started:
            # Work announced late (after delay_s) starts with its first figures.
            body = text() if callable(text) else text
            self.start(f"{self._fraction(elapsed_s)} {body}".rstrip())
            return True
        now = self.clock()
        since = now - (self._last_emit if self._last_emit is not None else now)
        if self.sink.is_tty:
            if since < self.tty_every_s:
                return False
            self._last_emit = now
            self.sink.status(self._message(elapsed_s, text))
            return True
        step = int(min(max(elapsed_s / self.total_s, 0.0), 1.0) * LOG_STEPS) if self.total_s else 0
        if step >= LOG_STEPS or step <= self._last_step or since < self.log_every_s:
            return False  # the line at 100% is finish()'s to write
        self._last_step = step
        self._last_emit = now
        self.sink.line(self._message(elapsed_s, text))
        return True

    def finish(self, text: str) -> None:
        """The last word on work that was announced; silent for work that never was."""
        if self._started:
            self.sink.done(f"{self.label}: {text}")

    def _message(self, elapsed_s: float, text: str | Callable[[], str]) -> str:
        body = text() if callable(text) else text
        return f"{self.label}: {self._fraction(elapsed_s)} {body}".rstrip()

    def _fraction(self, elapsed_s: float) -> str:
        return f"{_clock_text(elapsed_s)}/{_clock_text(self.total_s)}"


def _clock_text(seconds: float) -> str:
    """``42.0s`` under a minute, ``12:05`` (minutes:seconds) beyond."""
    if seconds < 60:
        return f"{seconds:.1f}s"
    minutes, rest = divmod(round(seconds), 60)
    return f"{minutes}:{rest:02d}"


class NullSink:
    """A sink that writes nothing: quiet runs, xdist workers and measuring children."""

    is_tty = False

    def line(self, text: str) -> None:
        pass

    def status(self, text: str) -> None:
        pass

    def done(self, text: str) -> None:
        pass
