"""hardware.speed_jitter: each device's speed drawn per pass (seeded); the point's latency is the
median draw's, so a synchronized pass shows its stragglers."""

from __future__ import annotations

import statistics
from dataclasses import replace

import pytest

from astrasim.pointrun import JITTER_DRAWS, jittered_speeds, run_point
from astrasim.scenario.grid import expand
from astrasim.scenario.loading import from_dict


def _point(strategy: str, devices: int, jitter: float):
    sc = from_dict(
        {
            "name": "jitter",
            "models": ["gpt2-s"],
            "strategies": [{"name": strategy}],
            "devices": [devices],
            "hardware": {"speed_jitter": jitter},
            "network": {"topology": "ideal", "bandwidth_mbps": 100000},
        }
    )  # compute-bound
    return expand(sc)[0]


def test_draws_are_seeded_with_mean_one_and_the_asked_spread():
    speeds = [1.0] * 4000
    once, again = jittered_speeds(speeds, 0.2, 3), jittered_speeds(speeds, 0.2, 3)
    assert once == again and once != jittered_speeds(speeds, 0.2, 4)
    times = [1 / s for s in once]
    assert statistics.mean(times) == pytest.approx(1.0, abs=0.02)
    assert statistics.stdev(times) == pytest.approx(0.2, rel=0.1)


def test_devices_on_one_host_share_its_draw_and_one_device_per_host_draws_as_without_hosts():
    speeds = [1.0, 2.0, 1.0, 2.0]
    shared = jittered_speeds(speeds, 0.2, 5, host_of=(0, 0, 1, 1))
    assert shared[0] / speeds[0] == pytest.approx(shared[1] / speeds[1])
    assert shared[2] / speeds[2] == pytest.approx(shared[3] / speeds[3])
    assert shared[0] / speeds[0] != pytest.approx(shared[2] / speeds[2])
    assert jittered_speeds(speeds, 0.2, 5, host_of=(0, 1, 2, 3)) == jittered_speeds(speeds, 0.2, 5)


def test_no_jitter_is_the_plain_run_and_one_device_barely_moves():
    plain = _point("single", 1, 0.0)
    assert plain.speed_jitter == 0.0
    base = run_point(plain)[0].latency_s
    jittered = run_point(replace(plain, speed_jitter=0.1))[0].latency_s
    assert jittered == pytest.approx(base, rel=0.05)  # the median of one device's draws


def test_a_synchronized_pass_waits_for_its_slowest_device():
    """tp synchronizes every layer: with jitter its median pass is slower than the mean-speed pass
    (and more so with more devices), and the result is the same run after run."""
    base = {n: run_point(_point("tp", n, 0.0))[0].latency_s for n in (2, 8)}
    slow = {n: run_point(_point("tp", n, 0.15))[0].latency_s for n in (2, 8)}
    assert slow[2] > base[2] * 1.02 and slow[8] / base[8] > slow[2] / base[2]
    assert run_point(_point("tp", 8, 0.15))[0].latency_s == slow[8]
    assert JITTER_DRAWS % 2 == 1  # the median is one run's latency
