"""Processor sharing of compute: devices placed on hosts that have a number of cores.

Several simulated devices may run on one multi-core machine (several partitions on one board, or
N test hosts on a 2-core validation machine). A host with c cores running k computes gives each
of them min(1, c / k) of a core: max-min fair sharing of the host's cores where one compute uses
at most one core (a device runs one single-threaded program), the flow network's rule for links
applied to cores. A compute of w seconds (at a full core: Compute.seconds / speed) ends when its
work is done; every start or end on the host re-rates the computes still running there.

`Messages cost CPU too (`message_cpu_s`, the engine's option): every message a device sends or
receives adds a short job of that many core-seconds to its host (`HostCores.burst`), shared with
the computes like one more of them: a computing device is slowed down by it, an idle core absorbs
it (on an idle host the cost is part of the per-message latency, alpha).

`Placement` says which host each device is on and how many cores each host has. The engine uses
`HostCores` only for hosts with more devices than cores, or for every device when messages cost
CPU: elsewhere every device has a processor of its own and the engine's fixed-duration path runs,
unchanged.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

from astrasim.errors import UserError


@dataclass(frozen=True)
class Placement:
    """host_of[d]: the host of device d; cores[h]: the cores of host h."""

    host_of: tuple[int, ...]
    cores: tuple[int, ...]

    @classmethod
    def of(cls, n_devices: int, hosts: int | None, cores_per_host: int = 1) -> Placement | None:
        """n devices in contiguous, balanced blocks on `hosts` hosts of `cores_per_host` cores each
        (device d on host d * hosts // n); None (hosts unset): every device its own processor."""
        if hosts is None:
            return None
        if hosts < 1 or cores_per_host < 1:
            raise UserError("hosts and cores_per_host must be at least 1", "hardware.hosts")
        hosts = min(hosts, n_devices)
        return cls(tuple(d * hosts // n_devices for d in range(n_devices)), (cores_per_host,) * hosts)

    def shared_hosts(self) -> set[int]:
        """Hosts with more devices than cores (the only ones whose computes share cores)."""
        count: dict[int, int] = {}
        for h in self.host_of:
            count[h] = count.get(h, 0) + 1
        return {h for h, k in count.items() if k > self.cores[h]}


class HostCores:
    """The computes running on one host, sharing its cores; `on_done(device)` when one ends.

    `clock` is the engine's Clock (call_at(delay, priority, callback, arg)). One completion event
    is pending per host: the earliest job's (the first listed among equal times); a re-rating
    makes it stale (its `epoch` is no longer the host's) and schedules the new earliest one."""

    def __init__(self, clock, cores: int, priority: int, on_done: Callable[[int], None]):
        self.clock, self.cores, self.priority, self.on_done = clock, cores, priority, on_done
        self.work_left: dict[int, float] = {}  # running device (or burst key) -> core-seconds still to do
        self.epoch = 0  # number of the pending completion event; earlier ones are stale
        self.rate = 0.0  # cores per running compute
        self.since = 0.0  # time of the last re-rating
        self.bursts = 0  # keys of message bursts (negative: never a device)

    def start(self, device: int, seconds: float) -> None:
        """Device starts a compute of `seconds` at a full core."""
        self._advance()
        self.work_left[device] = seconds
        self._rerate()

    def burst(self, seconds: float) -> None:
        """A message's CPU cost: a job of `seconds` at a full core that nobody waits for."""
        self._advance()
        self.bursts += 1
        self.work_left[-self.bursts] = seconds
        self._rerate()

    def _advance(self) -> None:
        now = self.clock.now
        done = (now - self.since) * self.rate
        if done > 0:
            work_left = self.work_left
            for d in work_left:
                work_left[d] -= done
        self.since = now

    def _rerate(self) -> None:
        work_left = self.work_left
        k = len(work_left)
        self.epoch += 1
        if not k:
            self.rate = 0.0
            return
        rate = self.rate = min(1.0, self.cores / k)
        now = self.clock.now
        first, first_at, first_delay = 0, math.inf, 0.0
        for d, w in work_left.items():  # the time each job would end: the earliest (first listed on ties)
            delay = max(w, 0.0) / rate
            at = now + delay
            if at < first_at:
                first, first_at, first_delay = d, at, delay
        self.clock.call_at(first_delay, self.priority, self._finished, (first, self.epoch))

    def _finished(self, arg: tuple[int, int]) -> None:
        d, epoch = arg
        if epoch != self.epoch:
            return  # re-rated since this event was scheduled
        self._advance()
        del self.work_left[d]
        self._rerate()
        if d >= 0:
            self.on_done(d)
