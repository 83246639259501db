"""When a supervisor starts a serving process again, and when it gives up (pure: no clock,
no processes; the supervisor tells it what happened).

A process that exits is started again after a delay that doubles with each exit of its
slot (so a process that crashes at start does not spin), back to the first delay once a
process of that slot has served for ``stable_after`` seconds. A slot whose processes exit
before they serve ``give_up_after`` times in a row while no other process serves means the
processes cannot start at all (a bad setting, a missing file): retrying would only hide it.
While others serve, the slot keeps trying, at most ``max_delay`` apart.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class RestartPolicy:
    first_delay: float = 0.5
    max_delay: float = 30.0
    stable_after: float = 60.0
    give_up_after: int = 3


@dataclass
class _Slot:
    exits: int = 0
    """Exits since a process of the slot last served for ``stable_after``: the backoff."""
    start_failures: int = 0
    """Exits in a row before serving: the evidence that processes cannot start."""


@dataclass
class Restarts:
    policy: RestartPolicy = field(default_factory=RestartPolicy)
    _slots: dict[int, _Slot] = field(default_factory=dict)

    def exited(
        self, slot: int, *, served: bool, uptime: float, others_serving: int
    ) -> float | None:
        """The delay before the slot's next process, or None: give up."""
        state = self._slots.setdefault(slot, _Slot())
        if served and uptime >= self.policy.stable_after:
            state.exits = 0
        state.exits += 1
        state.start_failures = 0 if served else state.start_failures + 1
        if state.start_failures >= self.policy.give_up_after and others_serving == 0:
            return None
        # The exponent is capped: a slot that crashed thousands of times must not overflow.
        doubling = 2.0 ** min(state.exits - 1, 32)
        return min(self.policy.max_delay, self.policy.first_delay * doubling)

    def start_failures(self, slot: int) -> int:
        return self._slots.get(slot, _Slot()).start_failures
