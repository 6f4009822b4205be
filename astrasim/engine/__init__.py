"""The engine: runs an OpGraph on devices and a flow-level network (see sim.py). `compile` a
graph and topology once into a Program and `Program.run` it as often as needed; `simulate` is
one compile and one run."""

from astrasim.engine.program import Program, compile, simulate
from astrasim.engine.result import DeadlockError, SimResult, TimelineEvent

__all__ = ["simulate", "compile", "Program", "SimResult", "TimelineEvent", "DeadlockError"]
