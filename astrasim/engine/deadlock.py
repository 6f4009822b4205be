"""The report of a run whose event queue emptied with work left: who is stuck, and on what."""

from __future__ import annotations

from collections.abc import Sequence

from astrasim.engine.comms import CommState
from astrasim.engine.result import DeadlockError
from astrasim.opgraph import Op


def deadlock_error(
    ops: Sequence[Op], comm_state: Sequence[CommState | None], finished: Sequence[bool], now: float, active_flows: int
) -> DeadlockError:
    index = {op.id: k for k, op in enumerate(ops)}
    lines, devices, names = [], set(), []
    for k, op in enumerate(ops):
        st = comm_state[k]
        if st is None:
            if finished[k]:
                continue
            d = op.device  # type: ignore[union-attr]  # no comm state: a Compute
            waits = []
            for name in op.deps:
                dep = comm_state[index[name]]
                if dep is None:
                    if not finished[index[name]]:
                        waits.append(f"compute {name!r}")
                elif d not in dep.devs:
                    waits.append(f"comm {name!r} (device {d} does not take part in it)")
                elif dep.done_at[dep.devs.index(d)] is None:
                    waits.append(f"comm {name!r} (not complete at device {d})")
            if waits:
                devices.add(d)
                names.append(op.id)
                lines.append(f"device {d}: compute {op.id!r} waits on " + ", ".join(waits))
            continue
        stuck = [p for p, t in enumerate(st.done_at) if t is None]
        if not stuck:
            continue
        names.append(op.id)
        never = [st.devs[p] for p in stuck if st.joined[p] is None]
        flying = [st.devs[p] for p in stuck if st.joined[p] is not None]
        devices.update(st.devs[p] for p in stuck)
        parts = []
        if never:
            parts.append(f"devices {never} never joined (their deps never finished)")
        if flying:
            parts.append(
                f"devices {flying} wait for messages that never arrive ({active_flows} flows stalled: zero bandwidth?)"
            )
        lines.append(f"comm {op.id!r} ({st.op.collective} over {list(st.devs)}): " + "; ".join(parts))
    head = (
        f"deadlock at t={now:.6g}s: the event queue is empty but {len(names)} op(s) are "
        f"unfinished on devices {sorted(devices)}"
    )
    shown = lines[:12] + ([f"... and {len(lines) - 12} more"] if len(lines) > 12 else [])
    return DeadlockError(head + ":\n  " + "\n  ".join(shown), sorted(devices), names)
