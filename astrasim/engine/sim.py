"""The engine: devices run an OpGraph (astrasim/opgraph.py semantics), collectives become
messages on a FlowNetwork.

* Each device runs one Compute at a time; among its ready ops it starts the first in program
  order (if that is not its earliest unstarted op, it waits for the rest of the current instant
  before choosing, so ops that become ready at the same instant compete fairly). A Compute of
  `seconds` takes `seconds / speed[device]` (plus `op_overhead_s`, a per-op dispatch cost, default 0, for a
  Compute of more than zero seconds) on a
  processor of its own; with a `placement` (hosts with a number of cores, astrasim/engine/cores.py)
  the computes of a host with more devices than cores share its cores (processor sharing).
  With `message_cpu_s` > 0 every message costs its sender's and each receiver's host that many
  core-seconds, shared with the computes there (cores.py; default 0: communication costs no CPU).
* A Comm is joined by participant i once every dep belonging to i is done (a Compute dep on device i;
  a Comm dep that i takes part in, once complete at i); i's messages then leave as their
  intra-collective dependencies allow (collectives.plan). Sending costs no compute (but CPU, with
  message_cpu_s).
  The Comm is complete at i when i has joined and every message i sends or receives has been
  delivered. A Compute on device j that depends on a Comm waits for its completion at j; if j
  does not take part, it waits forever and the run ends in DeadlockError.
* Accounting per device: compute (busy); exposed communication (not computing while some Compute
  of the device has all its non-Comm deps done and waits on an unfinished Comm, or while all its
  Computes are done and one of its Comms is not complete there: tp's final all-reduce); idle (the
  rest of the latency). The latency is the time the last op finishes (at every participant).

The callback chain (one event loop, engine/clock.py: no processes, no Event objects):

    _choose(d)                      at t = 0 (URGENT), and after each of d's computes
      |- nothing ready ............ idle until _make_ready(d, k) calls _run(d) at CHOOSE
      |- an earlier op may still become ready at this instant: _run(d) at CHOOSE
      '- _run(d): start d's first ready Compute k ---(its duration, NORMAL)---> _computed(d)
    _computed(d)
      |- k's only dependent is d's next op (Program.chain_next): start it, as _choose would
      |- Computes waiting on k: _dep_done -> _make_ready
      |- joins waiting on k:    _join(comm, p) -> _launch -> FlowNetwork.send_parts
      '- _choose(d)
    FlowNetwork settle (SETTLE)
      |- _delivered(comm, messages) -> _complete(comm, p) -> _dep_done, _join
      '- _send_released(): the messages freed at this instant leave, grouped per Comm
"""

from __future__ import annotations

import gc
import heapq
import math
from collections.abc import Sequence
from typing import TYPE_CHECKING, cast

from astrasim.engine.clock import CHOOSE, NORMAL, SETTLE, URGENT, Clock
from astrasim.engine.comms import CommShape, CommState
from astrasim.engine.cores import HostCores, Placement
from astrasim.engine.deadlock import deadlock_error
from astrasim.engine.result import SimResult, TimelineEvent
from astrasim.errors import UserError
from astrasim.network.flows import FlowNetwork

if TYPE_CHECKING:
    from astrasim.engine.program import CommPlan, Program
    from astrasim.opgraph import Comm


def run_program(
    program: Program,
    speeds: list[float],
    record_timeline: bool,
    placement: Placement | None,
    op_overhead_s: float | Sequence[float],
    message_cpu_s: float,
    record_op_ends: bool = False,
) -> SimResult:
    """One run of a compiled program (Program.run checks the speeds)."""
    collect = gc.isenabled()
    gc.disable()  # the run allocates many small tuples and frees them itself: skip cycle scans
    try:
        run = _Run(program, speeds, record_timeline, record_op_ends)
        run.share_cores(placement, op_overhead_s, message_cpu_s)
        return run.run()
    finally:
        if collect:
            gc.enable()


class _Run:
    def __init__(self, program: Program, speeds: list[float], record: bool, record_ends: bool):
        self.env = env = Clock()
        self.net = net = FlowNetwork(env, program.fabric.resources, self._delivered, self._send_released, SETTLE)
        n = self.n = program.n
        self.ops = ops = program.ops
        self.device_of = device_of = program.device_of
        self.duration = [t / speeds[d] if d >= 0 else t for t, d in zip(program.seconds, device_of)]
        self.deps_left = list(program.deps)  # per Compute: deps not done
        self.comm_deps_left = list(program.comm_deps)  # ... of which Comms
        self.compute_dependents = program.compute_dependents  # per Compute: Computes waiting on it
        self.computes_left = list(program.computes)  # per device
        self.comms_left = list(program.comms)  # per device: Comms not complete there
        self.program = program.program  # per device: its Computes in program order
        self.chain_next = program.chain_next
        shapes = [CommShape(spec, net) for spec in program.shapes]
        comm_state: list[CommState | None] = [None] * len(ops)
        plans = cast("list[CommPlan]", program.comm)  # set at every Comm op, the only ones read here
        for k in program.comm_ops:
            cp = plans[k]
            comm_state[k] = CommState(k, cast("Comm", ops[k]), shapes[cp.shape], cp.pos, list(cp.gates), cp.dependents)
        states = cast("list[CommState]", comm_state)  # gates name Comms only, whose states are all set now
        for k in program.comm_ops:
            states[k].gated = [[(states[j], q) for j, q in g] for g in plans[k].gated]
        self.comm_state = comm_state
        # per Compute: joins (comm, position) waiting on it
        self.join_gates: list[Sequence[tuple[CommState, int]]] = [
            [(states[j], q) for j, q in g] if g else () for g in program.join_gates
        ]
        self.finished = [st is not None for st in comm_state]  # Comms: see CommState.done_at
        self.started = list(self.finished)
        self.ready: list[list[int]] = [list(r) for r in program.ready]  # per device: heap of ready Computes
        self.head = [0] * n  # per device: index in program of its earliest unstarted Compute
        self.idle_waiting = [False] * n  # nothing ready: the next ready op wakes the device
        self.running = [-1] * n  # per device: the Compute it runs
        self.busy = [False] * n
        self.since = [0.0] * n  # accounting: time up to which the device is accounted for
        self.compute_s = [0.0] * n
        self.exposed_s = [0.0] * n
        self.waiting_on_comm = list(program.waiting_on_comm)  # Computes whose non-Comm deps are done, waiting on Comms
        self.t_end = 0.0
        self.comm_bits = 0.0
        self.n_messages = 0
        self.to_release: list[CommState] = []
        self.timeline: list[TimelineEvent] | None = [] if record else None
        self.op_end: list[float] | None = [0.0] * len(ops) if record_ends else None  # per op: when it finished

    # ---------------------------------------------------------------- hosts and cores
    def share_cores(
        self, placement: Placement | None, op_overhead_s: float | Sequence[float], message_cpu_s: float = 0.0
    ) -> None:
        """Add the per-op dispatch cost; put the devices of hosts with more devices than cores on
        a shared HostCores (the others keep a processor of their own: the fixed-duration path),
        and every device on one when messages cost CPU (a device of no placement: a 1-core host)."""
        per_device = [op_overhead_s] * self.n if isinstance(op_overhead_s, (int, float)) else list(op_overhead_s)
        if len(per_device) != self.n:
            raise UserError(
                f"needs one op_overhead_s per device ({self.n}), got {len(per_device)}", "hardware.op_overhead_s"
            )
        for name, value in (*(("op_overhead_s", v) for v in per_device), ("message_cpu_s", message_cpu_s)):
            if value < 0 or not math.isfinite(value):
                raise UserError(f"{name} must be a finite number >= 0, got {value!r}", f"hardware.{name}")
        if any(per_device):
            self.duration = [
                t + per_device[self.device_of[k]] if self.device_of[k] >= 0 and t > 0 else t
                for k, t in enumerate(self.duration)
            ]
        self.host_cores: list[HostCores | None] = [None] * self.n
        self.message_cpu_s = message_cpu_s
        if placement is None:
            placement = Placement(tuple(range(self.n)), (1,) * self.n) if message_cpu_s else None
            if placement is None:
                return
        if len(placement.host_of) != self.n:
            raise UserError(
                f"placement covers {len(placement.host_of)} devices, the graph has {self.n}", "hardware.hosts"
            )
        hosts = set(placement.host_of) if message_cpu_s else placement.shared_hosts()
        shared = {h: HostCores(self.env, placement.cores[h], NORMAL, self._computed) for h in hosts}
        for d, h in enumerate(placement.host_of):
            self.host_cores[d] = shared.get(h)

    # ---------------------------------------------------------------- run
    def run(self) -> SimResult:
        env = self.env
        free = [(st, p) for st in self.comm_state if st is not None for p, g in enumerate(st.gates_left) if not g]
        for st, p in free:  # joined at t = 0 (listed first: joining may open other gates)
            self._join(st, p)
        for d in range(self.n):
            env.call_at(0.0, URGENT, self._choose, d)
        env.run()
        if not all(self.finished) or any(st is not None and None in st.done_at for st in self.comm_state):
            raise deadlock_error(self.ops, self.comm_state, self.finished, env.now, self.net.active_flows)
        latency = self.t_end
        for d in range(self.n):
            self._flush(d, latency)
        idle = [max(latency - c - e, 0.0) for c, e in zip(self.compute_s, self.exposed_s)]
        return SimResult(
            latency_s=latency,
            compute_s=self.compute_s,
            exposed_comm_s=self.exposed_s,
            idle_s=idle,
            comm_bits=self.comm_bits,
            link_bits=self.net.link_bits(),
            n_messages=self.n_messages,
            timeline=self.timeline,
            op_end_s=self.op_end,
            meta={"network_recomputes": self.net.recomputes, "bits_delivered": self.net.bits_delivered},
        )

    # ---------------------------------------------------------------- devices
    def _choose(self, d: int) -> None:
        """Device d is free: start its next op now, at the end of this instant, or when one is ready."""
        ready = self.ready[d]
        if not ready:
            if self.computes_left[d]:
                self.idle_waiting[d] = True
            return
        program, started, head = self.program[d], self.started, self.head[d]
        while started[program[head]]:
            head += 1
        self.head[d] = head
        if ready[0] != program[head] and self.env.more_now():
            self.env.call_at(0.0, CHOOSE, self._run, d)  # an earlier op may still become ready now
            return
        self._run(d)

    def _run(self, d: int) -> None:
        k = heapq.heappop(self.ready[d])
        self.started[k] = True
        now = self.env.now
        if self.waiting_on_comm[d]:  # (_flush, knowing that k is not done yet)
            self.exposed_s[d] += now - self.since[d]
        self.busy[d] = True
        self.running[d] = k
        self.since[d] = now  # start of the compute (the timeline reads it back)
        cores = self.host_cores[d]
        if cores is None:
            self.env.call_at(self.duration[k], NORMAL, self._computed, d)
        else:  # sharing its host's cores: HostCores calls _computed(d) when the work is done
            cores.start(d, self.duration[k])

    def _computed(self, d: int) -> None:
        k = self.running[d]
        now = self.env.now
        start = self.since[d]
        self.busy[d] = False
        self.since[d] = now
        self.compute_s[d] += self.duration[k] if self.host_cores[d] is None else now - start
        self.computes_left[d] -= 1
        if now > self.t_end:
            self.t_end = now
        if self.timeline is not None:
            op = self.ops[k]
            self.timeline.append(TimelineEvent("compute", d, op.id, op.name, start, now, op.layer))
        if self.op_end is not None:
            self.op_end[k] = now
        self.finished[k] = True
        nxt = self.chain_next[k]
        if nxt >= 0 and self.host_cores[d] is None:  # k's only dependent, next in d's program
            program, started, head = self.program[d], self.started, self.head[d]
            while started[program[head]]:
                head += 1
            self.head[d] = head
            if program[head] == nxt:  # what _dep_done, _make_ready, _choose and _run would do, in one
                self.deps_left[nxt] = 0
                started[nxt] = True
                if self.waiting_on_comm[d]:
                    self.exposed_s[d] += now - self.since[d]
                self.busy[d] = True
                self.running[d] = nxt
                self.since[d] = now
                self.env.call_at(self.duration[nxt], NORMAL, self._computed, d)
                return
        for j in self.compute_dependents[k]:
            self._dep_done(j, False)
        for st, p in self.join_gates[k]:
            st.gates_left[p] -= 1
            if not st.gates_left[p]:
                self._join(st, p)
        self._choose(d)

    def _flush(self, d: int, now: float) -> None:
        """Account device d's time up to `now` (exposed or idle) if it is not computing."""
        if not self.busy[d]:
            if self.waiting_on_comm[d] or (not self.computes_left[d] and self.comms_left[d]):
                self.exposed_s[d] += now - self.since[d]
            self.since[d] = now

    def _dep_done(self, k: int, comm: bool) -> None:
        """One dep of Compute k is done (`comm`: a Comm completed at k's device)."""
        self.deps_left[k] -= 1
        left = self.deps_left[k]
        if comm:
            self.comm_deps_left[k] -= 1
            if not left:  # was waiting on Comms only; now ready
                d = self.device_of[k]
                self._flush(d, self.env.now)
                self.waiting_on_comm[d] -= 1
                self._make_ready(d, k)
        elif not left:
            self._make_ready(self.device_of[k], k)
        elif left == self.comm_deps_left[k]:  # only Comms left to wait for
            d = self.device_of[k]
            self._flush(d, self.env.now)
            self.waiting_on_comm[d] += 1

    def _make_ready(self, d: int, k: int) -> None:
        heapq.heappush(self.ready[d], k)
        if self.idle_waiting[d]:
            self.idle_waiting[d] = False
            self.env.call_at(0.0, CHOOSE, self._run, d)

    # ---------------------------------------------------------------- collectives
    def _join(self, st: CommState, p: int) -> None:
        st.joined[p] = self.env.now
        for launch in st.shape.roots[p]:
            self._launch(st, launch)
        if st.held and p in st.held:
            for launch in st.shape.group(st.held.pop(p)):
                self._launch(st, launch)
        if not st.touches_left[p]:
            self._complete(st, p)

    def _launch(self, st: CommState, launch) -> None:
        alpha, frac, parts, count, ms = launch
        bits = st.bits * frac
        self.comm_bits += bits * count
        self.n_messages += count
        self.net.send_parts(parts, bits, alpha, st, ms)
        if self.message_cpu_s:
            for m in ms:
                self.host_cores[st.devs[st.shape.src[m]]].burst(self.message_cpu_s)
        if self.timeline is not None:
            if st.launched is None:
                st.launched = {}
            for m in ms:
                st.launched[m] = self.env.now

    def _delivered(self, st: CommState, ms: tuple[int, ...]) -> None:
        shape = st.shape
        touches_left, joined, deps_left = st.touches_left, st.joined, st.deps_left
        touched, freed = shape.effects(ms)
        if self.message_cpu_s:
            cores = cast("list[HostCores]", self.host_cores)  # message_cpu_s: every device has its host's
            for m in ms:
                for q in shape.dsts[m]:
                    cores[st.devs[q]].burst(self.message_cpu_s)
        for p, k in touched:
            left = touches_left[p] = touches_left[p] - k
            if not left and joined[p] is not None:
                self._complete(st, p)
        for ch, k in freed:
            left = deps_left[ch] = deps_left[ch] - k
            if not left:
                sp = shape.src[ch]
                if joined[sp] is not None:
                    if st.released is None:
                        st.released = [ch]
                        self.to_release.append(st)
                    else:
                        st.released.append(ch)
                else:
                    if st.held is None:
                        st.held = {}
                    st.held.setdefault(sp, []).append(ch)
        if self.timeline is not None:
            now = self.env.now
            op = st.op
            launched = cast("dict[int, float]", st.launched)  # filled at each launch when there is a timeline
            for m in ms:
                self.timeline.append(
                    TimelineEvent(
                        "message",
                        st.devs[shape.src[m]],
                        op.id,
                        op.name,
                        launched[m],
                        now,
                        op.layer,
                        tuple(st.devs[q] for q in shape.dsts[m]),
                        st.bits * shape.frac[m],
                    )
                )

    def _send_released(self) -> None:
        """After a batch of deliveries: the messages it freed leave, grouped per Comm."""
        to_release, self.to_release = self.to_release, []
        for st in to_release:
            ms, st.released = cast("list[int]", st.released), None  # set when st joined to_release
            for launch in st.shape.group(ms):
                self._launch(st, launch)

    def _complete(self, st: CommState, p: int) -> None:
        now = self.env.now
        st.done_at[p] = now
        d = st.devs[p]
        if self.comms_left[d] == 1 and not self.computes_left[d]:
            self._flush(d, now)  # its last wait on communication ends
        self.comms_left[d] -= 1
        if now > self.t_end:
            self.t_end = now
        if self.timeline is not None:
            op = st.op
            self.timeline.append(TimelineEvent("comm", d, op.id, op.name, cast(float, st.joined[p]), now, op.layer))
        if self.op_end is not None and now > self.op_end[st.k]:
            self.op_end[st.k] = now  # its completion at its last participant
        for k in st.dependents[p]:
            self._dep_done(k, True)
        for st2, p2 in st.gated[p]:
            st2.gates_left[p2] -= 1
            if not st2.gates_left[p2]:
                self._join(st2, p2)
