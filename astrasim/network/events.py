"""The event loop shared by the flow network and the engine: a clock, its priorities, one loop.

Callbacks run in (time, priority, scheduling order) order, on SimPy's Environment (pop the
earliest event, run its callbacks, repeat). At one instant:

    URGENT (0)  a device's first look at its ready ops (t = 0)
    NORMAL (1)  computes finish
    SETTLE (2)  the network: deliveries, activations, one rate recompute for the whole instant
    CHOOSE (3)  a device that could start an op other than its earliest unstarted one picks,
                now that every op that becomes ready at this instant is ready
"""

from __future__ import annotations

from typing import Any, Callable

import simpy

URGENT, NORMAL, SETTLE, CHOOSE = 0, 1, 2, 3


class Clock:
    """Simulated time (seconds) and the callbacks due: a SimPy Environment driven by callbacks.

    `call_at` is the one place that uses SimPy's scheduling directly (an already-triggered Event
    with one callback, put in SimPy's queue at a priority): SimPy orders it by (time, priority,
    scheduling order), which is exactly the order the engine and the flow network rely on."""

    __slots__ = ("env",)

    def __init__(self) -> None:
        self.env = simpy.Environment()

    @property
    def now(self) -> float:
        return self.env.now

    def call_at(self, delay: float, priority: int, callback: Callable[[Any], None], arg: Any = None) -> None:
        """Run `callback(arg)` `delay` seconds from now, at `priority`."""
        event = simpy.Event(self.env)
        event._ok, event._value = True, None  # triggered: SimPy only runs its callbacks when popped
        event.callbacks.append(lambda _event: callback(arg))
        self.env.schedule(event, priority, delay)

    def more_now(self) -> bool:
        """Is anything else due at the current instant?"""
        return self.env.peek() <= self.env.now

    def run(self) -> None:
        """Until nothing is due."""
        self.env.run()
