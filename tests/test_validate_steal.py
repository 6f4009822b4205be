"""The hypervisor-steal guard of the validation campaign (astrasim/validation/steal.py)."""

from __future__ import annotations

import pytest

from astrasim.validation import steal


def test_stolen_share_and_reading():
    assert steal.stolen_share((10, 1000), (30, 2000)) == pytest.approx(0.02)
    assert steal.stolen_share((0, 0), (0, 0)) == 0.0
    s, total = steal.cpu_times()
    assert 0 <= s <= total


def test_a_stolen_job_is_taken_again_and_the_least_stolen_kept(monkeypatch):
    readings = iter([(0, 0), (50, 1000), (50, 1000), (55, 2000), (55, 2000), (60, 3000)])
    monkeypatch.setattr(steal, "cpu_times", lambda: next(readings))
    tries = iter(["first", "second", "third"])
    said = []
    result, share = steal.least_stolen(lambda: next(tries), said.append, "job")
    assert (result, share) == ("second", pytest.approx(0.005))  # 5 %, then 0.5 %: stop
    assert len(said) == 1 and "5.0%" in said[0] and "again" in said[0]
