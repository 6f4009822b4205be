"""The engine: runs an OpGraph on devices and a flow-level network (see sim.py)."""

from astrasim.engine.result import DeadlockError, SimResult, TimelineEvent
from astrasim.engine.sim import simulate

__all__ = ["simulate", "SimResult", "TimelineEvent", "DeadlockError"]
