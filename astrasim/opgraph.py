"""The op graph: the one contract between strategies (who know Transformers) and the engine
(who knows devices and networks).

A strategy turns (model, profile, N, tokens, options) into an OpGraph: a DAG of Compute ops,
each pinned to one device with a duration, and Comm ops, each a collective joined by a set of
devices with a size in bits. The engine runs it; it never looks at op names except to report.

Semantics (the engine implements exactly these; strategies rely on them):

* Devices are integers 0..N-1. A device executes one Compute op at a time; among its ready
  ops it starts the one that comes first in `OpGraph.ops` (program order). A Compute op of
  `seconds` takes `seconds / speed[device]` simulated seconds.
* Sending and receiving cost no device compute time (a NIC/DMA moves the bytes); a device
  can compute while its messages are in flight. Overlap is therefore exactly what the
  dependencies allow.
* A Comm is expanded by the engine into point-to-point messages (flows) according to
  `collective` and `algorithm`. Its deps are read per participant: participant i may start
  sending once every dep that belongs to device i is done (a Compute dep belongs to its
  device; a Comm dep belongs to each of its participants and is done for device i when it
  is complete at i). Deps that do not belong to device i do not gate device i.
* A Comm is *complete at device i* when every message i sends and every message i receives
  in it has been delivered. A Compute op on device j that depends on a Comm waits until
  that Comm is complete at j (j must participate).
* `bits` is the payload; its meaning per collective:
    - "all_gather":     bits each participant contributes (everyone ends with len(devices)*bits)
    - "all_reduce":     bits of the full tensor every participant holds and ends with
    - "reduce_scatter": bits of the full tensor; each participant ends with bits/len(devices)
    - "all_to_all":     bits each participant sends to each other participant
    - "gather":         bits each non-root participant sends to `root`
    - "broadcast":      bits `root` sends to every other participant (a multicast when
                        `devices` is a subset; on a shared medium with broadcast enabled it
                        may cost one airtime)
    - "p2p":            bits from devices[0] to devices[1]
* `algorithm`: "ring", "direct" or "star" (through `root`, default the first participant) for
  all_gather / all_reduce / reduce_scatter;
  "auto" lets the engine pick its documented default.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

COLLECTIVES = ("all_gather", "all_reduce", "reduce_scatter", "all_to_all", "gather", "broadcast", "p2p")
Collective = Literal["all_gather", "all_reduce", "reduce_scatter", "all_to_all", "gather", "broadcast", "p2p"]
Algorithm = Literal["auto", "ring", "direct", "star"]


@dataclass(frozen=True, slots=True)
class Compute:
    """A kernel run on one device: `seconds` at speed 1.0 (the profiled hardware)."""

    id: str
    device: int
    seconds: float
    deps: tuple[str, ...] = ()
    name: str = ""  # profile op name ("attn", "vq_encode", ...), for reports and traces
    layer: int = -1


@dataclass(frozen=True, slots=True)
class Comm:
    """A collective (or point-to-point message) joined by `devices`; see the module docstring."""

    id: str
    collective: Collective
    devices: tuple[int, ...]
    bits: float
    deps: tuple[str, ...] = ()
    root: int | None = None
    algorithm: Algorithm = "auto"
    name: str = ""
    layer: int = -1


Op = Compute | Comm


@dataclass
class OpGraph:
    """A program for N devices: ops in program order, plus free-form metadata for reports."""

    n_devices: int
    ops: list[Op] = field(default_factory=list)
    meta: dict = field(default_factory=dict)

    def add(self, op: Op) -> str:
        self.ops.append(op)
        return op.id

    def validate(self) -> None:
        """Check ids are unique, deps exist and come earlier, devices are in range, roots are set.

        Requiring deps to come earlier in program order makes every valid graph acyclic.
        """
        seen: set[str] = set()
        for op in self.ops:
            if op.id in seen:
                raise ValueError(f"duplicate op id {op.id!r}")
            for d in op.deps:
                if d not in seen:
                    raise ValueError(f"op {op.id!r} depends on {d!r}, which is unknown or later in program order")
            if isinstance(op, Compute):
                if not 0 <= op.device < self.n_devices:
                    raise ValueError(f"op {op.id!r}: device {op.device} outside 0..{self.n_devices - 1}")
                if op.seconds < 0:
                    raise ValueError(f"op {op.id!r}: negative duration")
            else:
                if op.collective not in COLLECTIVES:
                    raise ValueError(f"op {op.id!r}: unknown collective {op.collective!r}")
                if len(set(op.devices)) != len(op.devices) or not op.devices:
                    raise ValueError(f"op {op.id!r}: devices must be distinct and non-empty")
                if any(not 0 <= d < self.n_devices for d in op.devices):
                    raise ValueError(f"op {op.id!r}: device outside 0..{self.n_devices - 1}")
                if op.collective in ("gather", "broadcast") and op.root not in op.devices:
                    raise ValueError(f"op {op.id!r}: {op.collective} needs a root among its devices")
                if op.collective == "p2p" and len(op.devices) != 2:
                    raise ValueError(f"op {op.id!r}: p2p needs exactly two devices (src, dst)")
                if op.bits < 0:
                    raise ValueError(f"op {op.id!r}: negative size")
            seen.add(op.id)
