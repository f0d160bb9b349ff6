"""The sandbox's clocks: real time scaled by a scenario's speed, or time that moves only when told."""

from __future__ import annotations

import time


class ScenarioClock:
    """Real time since construction, scaled by the scenario's speed."""

    def __init__(self, speed: float = 1.0) -> None:
        self.speed = float(speed) if speed and speed > 0 else 1.0
        self._mono0 = time.monotonic()
        self._epoch0 = time.time()

    def now(self) -> float:
        """Wall-clock epoch seconds now (monotonic based, so never jumps backwards)."""
        return self._epoch0 + (time.monotonic() - self._mono0)

    def t(self) -> float:
        """Scenario seconds since start."""
        return (time.monotonic() - self._mono0) * self.speed


class ManualClock:
    """A clock that moves only when told to: deterministic tests with no sleeping."""

    def __init__(self, now: float = 1_750_000_000.0, t: float = 0.0, speed: float = 1.0) -> None:
        self.speed = speed
        self._now, self._t = now, t

    def now(self) -> float:
        """The pinned epoch seconds."""
        return self._now

    def t(self) -> float:
        """The pinned scenario seconds."""
        return self._t

    def advance(self, seconds: float) -> None:
        """Move scenario time (and wall time, scaled by speed) forward."""
        self._t += seconds
        self._now += seconds / self.speed

    def set(self, t: float) -> None:
        """Jump to scenario second t."""
        self.advance(t - self._t)
