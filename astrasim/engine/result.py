"""What one simulated run produces: SimResult, its timeline and the Chrome/Perfetto export."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from astrasim.fileio import write_text_atomic


class DeadlockError(RuntimeError):
    """The event queue emptied with work left. `devices` and `ops` name what is stuck."""

    def __init__(self, message: str, devices: list[int], ops: list[str]):
        super().__init__(message)
        self.devices = devices
        self.ops = ops


@dataclass(frozen=True, slots=True)
class TimelineEvent:
    """One interval. kind: "compute" (device computes op), "comm" (device is inside collective
    op: from joining it to its completion there) or "message" (device sends to `peers`)."""

    kind: str
    device: int
    op: str
    name: str
    start: float
    end: float
    layer: int = -1
    peers: tuple[int, ...] = ()
    bits: float = 0.0


@dataclass
class SimResult:
    latency_s: float
    compute_s: list[float]
    exposed_comm_s: list[float]
    idle_s: list[float]
    comm_bits: float
    link_bits: dict[str, float]
    n_messages: int
    timeline: list[TimelineEvent] | None = None
    meta: dict = field(default_factory=dict)
    op_end_s: list[float] | None = None  # per op, in graph order: when it finished (a Comm: at its last participant)

    def to_chrome_trace(self) -> dict:
        """Chrome/Perfetto trace JSON (open in ui.perfetto.dev or chrome://tracing).

        Process 0 "compute": one thread per device, complete events. Process 1 "collectives":
        async spans per device. Process 2 "messages": async spans per sender."""
        if self.timeline is None:
            raise ValueError("no timeline recorded: simulate(..., record_timeline=True)")
        n = len(self.compute_s)
        ev: list[dict] = []
        for pid, pname in ((0, "compute"), (1, "collectives"), (2, "messages")):
            ev.append({"ph": "M", "name": "process_name", "pid": pid, "tid": 0, "args": {"name": pname}})
            for d in range(n):
                ev.append({"ph": "M", "name": "thread_name", "pid": pid, "tid": d, "args": {"name": f"device {d}"}})
        for k, e in enumerate(self.timeline):
            args = {"op": e.op, "layer": e.layer}
            name = e.name or e.op
            ts, dur = e.start * 1e6, (e.end - e.start) * 1e6
            if e.kind == "compute":
                ev.append(
                    {
                        "ph": "X",
                        "name": name,
                        "cat": "compute",
                        "pid": 0,
                        "tid": e.device,
                        "ts": ts,
                        "dur": dur,
                        "args": args,
                    }
                )
                continue
            pid = 1 if e.kind == "comm" else 2
            if e.kind == "message":
                args.update(to=list(e.peers), bits=e.bits)
                name = f"{name} -> {','.join(map(str, e.peers))}"
            common = {"name": name, "cat": e.kind, "pid": pid, "tid": e.device, "id": k}
            ev.append({**common, "ph": "b", "ts": ts, "args": args})
            ev.append({**common, "ph": "e", "ts": ts + dur})
        return {
            "traceEvents": ev,
            "displayTimeUnit": "ms",
            "otherData": {"latency_s": self.latency_s, **{k: str(v) for k, v in self.meta.items()}},
        }

    def write_chrome_trace(self, path: str | Path) -> None:
        write_text_atomic(path, json.dumps(self.to_chrome_trace()))
