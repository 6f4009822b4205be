"""The event loop shared by the flow network and the engine: a clock, its priorities, one loop.

Callbacks run in (time, priority, scheduling order) order, as in SimPy's Environment, whose
`step` this is without Event objects: pop the earliest, call it, repeat. At one instant:

    URGENT (0)  a device's first look at its ready ops (t = 0)
    NORMAL (1)  computes finish
    SETTLE (2)  the network: deliveries, activations, one rate recompute for the whole instant
    CHOOSE (3)  a device that could start an op other than its earliest unstarted one picks,
                now that every op that becomes ready at this instant is ready
"""

from __future__ import annotations

import heapq
from itertools import count
from typing import Any, Callable

URGENT, NORMAL, SETTLE, CHOOSE = 0, 1, 2, 3


class Clock:
    """Simulated time (seconds) and the callbacks due."""

    __slots__ = ("now", "_queue", "_seq")

    def __init__(self) -> None:
        self.now = 0.0
        self._queue: list[tuple[float, int, int, Callable[[Any], None], Any]] = []
        self._seq = count()

    def call_at(self, delay: float, priority: int, callback: Callable[[Any], None], arg: Any = None) -> None:
        """Run `callback(arg)` `delay` seconds from now, at `priority`."""
        heapq.heappush(self._queue, (self.now + delay, priority, next(self._seq), callback, arg))

    def more_now(self) -> bool:
        """Is anything else due at the current instant?"""
        return bool(self._queue) and self._queue[0][0] <= self.now

    def run(self) -> None:
        """Until nothing is due."""
        queue, pop = self._queue, heapq.heappop
        while queue:
            self.now, _, _, callback, arg = pop(queue)
            callback(arg)
