"""The simulate path needs no torch; commands that do name the extra that brings it."""

import subprocess
import sys

import pytest

from astrasim.errors import UserError
from astrasim.extras import KERNELS_INSTALL, require_kernels


def test_simulate_sweep_and_plan_import_no_torch():
    code = (
        "import sys; import astrasim.cli, astrasim.sweep, astrasim.pointrun, astrasim.analysis.planning, "
        "astrasim.strategies.synthetic; from astrasim.strategies import STRATEGIES; "
        "print('torch' in sys.modules, 'sklearn' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["False", "False"]


def test_missing_torch_is_one_line_naming_the_extra(monkeypatch):
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "torch" else real(name, *a))
    with pytest.raises(UserError) as exc:
        require_kernels("profile")
    msg = str(exc.value)
    assert msg.startswith("profile:") and KERNELS_INSTALL in msg and "\n" not in msg
