"""Optional dependencies: the simulate path (simulate, sweep, plan) needs no torch; the kernels,
profiler, accuracy experiment and real-network validation live behind the `kernels` extra."""

from __future__ import annotations

import importlib.util

from astrasim.errors import UserError

KERNELS_INSTALL = "pip install -c constraints.txt -e '.[kernels]'"


def require_kernels(command: str) -> None:
    """UserError in one line, naming the extra, when torch (or scikit-learn) is not installed."""
    missing = [m for m in ("torch", "sklearn") if importlib.util.find_spec(m) is None]
    if missing:
        raise UserError(
            f"needs {', '.join(missing)} (the kernels extra); install it with `{KERNELS_INSTALL}`", field=command
        )
