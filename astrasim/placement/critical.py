"""The critical path of a simulated run, split into compute, communication and waiting: what binds.

Walking back from the op that finishes last: a Compute contributes its duration (compute) and the
gap between its latest dependency's end and its own start (waiting: its device was busy with
other work, or shared); a Comm, at the device that needs it, contributes the time from its latest
dependency's end to its completion there (communication). The walk moves to that latest
dependency each time. Ops outside `only` (an id prefix, e.g. the decode steps "tok") end the walk.
"""

from __future__ import annotations

from dataclasses import dataclass

from astrasim.opgraph import Comm, Compute


@dataclass(frozen=True)
class CriticalPath:
    compute_s: float
    comm_s: float
    wait_s: float
    messages: int  # Comms on the path

    @property
    def total_s(self) -> float:
        return self.compute_s + self.comm_s + self.wait_s


def critical_path(graph, result, only: str | None = None) -> CriticalPath:
    """The critical path of `result` (a SimResult recorded with record_timeline=True) of `graph`."""
    ops = {op.id: op for op in graph.ops}
    start: dict[str, float] = {}
    end: dict[str, float] = {}
    done_at: dict[tuple[str, int], float] = {}  # (comm id, device) -> completion there
    for e in result.timeline or ():
        if e.kind == "compute":
            start[e.op], end[e.op] = e.start, e.end
        elif e.kind == "comm":
            done_at[(e.op, e.device)] = max(done_at.get((e.op, e.device), 0.0), e.end)

    def finish(dep: str, device: int) -> float:
        op = ops[dep]
        if isinstance(op, Compute):
            return end.get(dep, 0.0)
        return done_at.get((dep, device), max((t for (k, _), t in done_at.items() if k == dep), default=0.0))

    def inside(op_id: str) -> bool:
        return only is None or op_id.startswith(only)

    last = max((k for k in end if inside(k)), key=lambda k: end[k], default=None)
    compute = comm = wait = 0.0
    messages = 0
    cur, device = last, None
    while cur is not None and inside(cur):
        op = ops[cur]
        if isinstance(op, Compute):
            device = op.device
            compute += end[cur] - start[cur]
            deps = [(finish(d, device), d) for d in op.deps]
            t_dep, dep = max(deps, default=(0.0, None))
            wait += max(0.0, start[cur] - t_dep)
        else:
            assert isinstance(op, Comm)
            here = device if device in op.devices else op.devices[-1]
            completion = done_at.get((cur, here), 0.0)
            deps = [(finish(d, ops[d].device if isinstance(ops[d], Compute) else here), d) for d in op.deps]
            t_dep, dep = max(deps, default=(0.0, None))
            comm += max(0.0, completion - t_dep)
            messages += 1
        cur = dep
    return CriticalPath(compute, comm, wait, messages)
