"""The engine's event loop: SimPy's Environment driven by callbacks, and its priorities.

Callbacks run in (time, priority, scheduling order) order: SimPy's `Environment.step` pops the
earliest entry of its queue and runs its callbacks, `run` repeats until the queue is empty. At
one instant:

    URGENT (0)  a device's first look at its ready ops (t = 0)
    NORMAL (1)  computes finish
    SETTLE (2)  the network (FlowNetwork's wake-up): deliveries, activations, one rate recompute
                for the whole instant
    CHOOSE (3)  a device that could start an op other than its earliest unstarted one picks,
                now that every op that becomes ready at this instant is ready

The network knows nothing of this module: it is handed the clock (anything with `now` and
`call_at`, network/flows.py `Scheduler`) and the priority of its wake-ups.
"""

from __future__ import annotations

from collections.abc import Callable
from heapq import heappush
from typing import Any

import simpy

URGENT, NORMAL, SETTLE, CHOOSE = 0, 1, 2, 3


def _fire(call: _Call) -> None:
    call.callback(call.arg)


class _Call:
    """An already-triggered SimPy event with one callback, `callback(arg)`: what
    `Environment.step` needs of an event (`callbacks`, `_ok`), without an Event's bookkeeping."""

    __slots__ = ("callbacks", "callback", "arg")
    _ok = True  # succeeded: step() runs the callbacks and raises nothing
    _FIRE = (_fire,)

    def __init__(self, callback: Callable[[Any], None], arg: Any) -> None:
        self.callbacks: tuple | None = _Call._FIRE
        self.callback = callback
        self.arg = arg


class Clock(simpy.Environment):
    """Simulated time (seconds, `now`) and the callbacks due: SimPy's Environment, whose queue
    `call_at` fills directly with `_Call` entries (`Environment.schedule`'s own
    (time, priority, order, event) tuple), so SimPy orders them by (time, priority, scheduling
    order): exactly the order the engine and the flow network rely on."""

    def call_at(self, delay: float, priority: int, callback: Callable[[Any], None], arg: Any = None) -> None:
        """Run `callback(arg)` `delay` seconds from now, at `priority`."""
        heappush(self._queue, (self._now + delay, priority, next(self._eid), _Call(callback, arg)))  # type: ignore[misc]  # a duck-typed _Call where SimPy's stubs say Event

    def more_now(self) -> bool:
        """Is anything else due at the current instant?"""
        return self.peek() <= self._now
