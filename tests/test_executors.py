"""The one executor and progress bar (astrasim/executors.py) that sweep, plan, profile and accuracy share."""

import pytest
import yaml

from astrasim.errors import UserError
from astrasim.executors import Progress, check_workers, simulate_points
from astrasim.models import get_model
from astrasim.pointrun import simulate_point
from astrasim.results import row_key, row_line
from astrasim.scenario import load_scenario, point_key
from astrasim.strategies.synthetic import synthetic_profile


@pytest.fixture()
def points(tmp_path, monkeypatch):
    d = tmp_path / "profiles"
    d.mkdir()
    synthetic_profile([get_model("vit-base")], devices=(2, 4), tokens=None).to_csv(d / "cpu.csv", index=False)
    monkeypatch.setenv("ASTRASIM_PROFILES", str(d))
    p = tmp_path / "s.yaml"
    p.write_text(
        yaml.safe_dump(
            {
                "models": ["vit-base"],
                "devices": [2, 4],
                "strategies": ["single", "tp", "sp"],
                "network": {"topology": "wifi", "bandwidth_mbps": [10, 100]},
            }
        )
    )
    return load_scenario(p).points()


def test_every_executor_gives_the_serial_rows(points):
    serial = {point_key(p): row_line(simulate_point(p)) for p in points}
    for workers in (1, 2, 3):
        rows = list(simulate_points(iter(points), workers=workers, n_points=len(points)))
        assert len(rows) == len(points)
        assert {row_key(r): row_line(r) for r in rows} == serial  # the same rows, in any order


def test_workers_are_checked():
    assert check_workers(2) == 2
    for bad in (0, -1, True, 10**6):
        with pytest.raises(UserError, match="--workers"):
            check_workers(bad)


def test_progress_counts_exactly_and_restarts():
    with Progress(True, 5, "checking") as bar:
        for _ in range(5):
            bar.advance()
        task = bar.bar.tasks[0]
        assert (task.completed, task.description) == (5, "checking")
        bar.restart("simulating", 2)
        bar.advance(description="point 3")
        bar.describe("point 4")
        assert (task.completed, task.total, task.description) == (3, 5, "point 4")
        bar.restart("simulating", total=2)
        assert (task.completed, task.total) == (0, 2)
    assert not bar.bar.live.is_started  # stopped on exit
    with Progress(False, 5) as off:  # disabled: nothing shown, every call a no-op
        off.advance()
        off.restart("x", 1)
        assert off.bar is None
