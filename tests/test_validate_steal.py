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


def test_clean_keeps_the_unstolen_samples_while_half_remain():
    assert steal.clean([0.0, 0.05, 0.0, 0.01]) == [0, 2, 3]
    # too few below STEAL_MAX: the least stolen half instead, in their order
    assert steal.clean([0.1, 0.05, 0.2, 0.03]) == [1, 3]
    assert steal.clean([0.5]) == [0] and steal.clean([]) == []
    assert steal.kept_share([0.1, 0.05, 0.2, 0.03]) == pytest.approx(0.04)


def test_a_job_can_count_as_stolen_only_over_its_kept_samples(monkeypatch):
    readings = iter([(0, 0), (50, 1000)])  # 5 % over the job ...
    monkeypatch.setattr(steal, "cpu_times", lambda: next(readings))
    said = []
    result, share = steal.least_stolen(lambda: "job", said.append, "job", share_of=lambda r, s: 0.0)
    assert (result, share, said) == ("job", 0.0, [])  # ... but none over what its medians keep: not retaken


def test_a_stolen_pass_is_left_out_of_the_point_median():
    from astrasim.validation.measure import measured_row

    def rank(ends, shares):
        return {
            "result": {
                "p": {
                    "passes": [
                        {"start": 0.0, "end": e, "late_s": 0.0, "stolen": s, "compute_s": 0.5, "ops": {"x": 0.5}}
                        for e, s in zip(ends, shares)
                    ]
                }
            }
        }

    # rank 1 saw the hypervisor take 30 % of the machine during the third pass, which ran 1.5x long
    res = [rank([1.0, 1.02, 1.5, 0.98], [0.0] * 4), rank([0.99, 1.01, 1.49, 0.97], [0.0, 0.0, 0.3, 0.0])]
    row = measured_row(res, "p")
    assert row["repeats"] == 3 and row["passes_dropped"] == 1
    assert row["measured_s"] == pytest.approx(1.0) and row["measured_max_s"] == pytest.approx(1.02)
    assert row["stolen"] == 0.0
    # without the share recorded (older workers) every pass counts
    for r in res:
        for p in r["result"]["p"]["passes"]:
            del p["stolen"]
    assert measured_row(res, "p")["repeats"] == 4


def test_a_stolen_corun_round_is_dropped_on_every_rank():
    from astrasim.validation.corun import drop_stolen_rounds, one_core_op_seconds

    # two rounds per rank, op "a" twice per round; the second round stolen (as rank 0 saw it)
    r0 = {
        "ops": {"a": [1.0, 1.0, 3.0, 3.0], "b": [2.0, 6.0]},
        "wall": [4.0, 12.0],
        "cpu": [4.0, 4.0],
        "stolen": [0.0, 0.4],
    }
    r1 = {
        "ops": {"a": [1.0, 1.0, 1.0, 1.0], "b": [2.0, 2.0]},
        "wall": [4.0, 4.0],
        "cpu": [4.0, 4.0],
        "stolen": [0.0, 0.0],
    }
    kept = drop_stolen_rounds([r0, r1])
    assert kept[0]["ops"] == {"a": [1.0, 1.0], "b": [2.0]} and kept[0]["wall"] == [4.0]
    assert kept[1]["ops"] == {"a": [1.0, 1.0], "b": [2.0]} and kept[1]["stolen"] == [0.0]
    assert one_core_op_seconds(kept, 1.0) == {"a": 1.0, "b": 2.0}
    assert drop_stolen_rounds([{"ops": {}, "wall": [1.0]}]) == [{"ops": {}, "wall": [1.0]}]  # unrecorded


def test_the_message_cpu_delay_leaves_out_stolen_pairs():
    from astrasim.validation.interference import kept_pairs, measured_delay_s

    rank = {"quiet": [1.0, 1.0, 1.0], "busy": [1.1, 1.1, 2.0], "stolen": [0.0, 0.0, 0.25], "messages": 10}
    assert kept_pairs([rank]) == ([0, 1], 0.0)
    assert measured_delay_s([rank]) == pytest.approx(0.1)


def test_a_points_costs_come_from_the_rounds_paired_with_its_passes_when_enough():
    from astrasim.validation.corun import PAIRED_MIN, cost_rounds

    def record(wall, n):
        return {"ops": {"a": [wall] * n}, "cpu": [wall] * n, "wall": [wall] * n, "stolen": [0.0] * n}

    many = [{"kernels": record(1.0, 10), "paired": record(1.2, PAIRED_MIN)}]
    assert cost_rounds(many)[0]["wall"] == [1.2] * PAIRED_MIN  # paired only
    few = [{"kernels": record(1.0, 10), "paired": record(1.2, PAIRED_MIN - 1)}]
    assert sorted(cost_rounds(few)[0]["wall"]) == [1.0] * 10 + [1.2] * (PAIRED_MIN - 1)  # pooled
    assert cost_rounds([{"kernels": record(1.0, 3)}])[0]["wall"] == [1.0] * 3  # older workers: windows


def test_kernel_round_records_one_round_and_add_round_appends_it():
    from astrasim.validation.corun import add_round, empty_record, kernel_round

    calls = []
    rec = empty_record()
    for _ in range(2):
        add_round(
            rec, kernel_round([("a", lambda: calls.append(1)), ("b", lambda: None), ("a", lambda: None)], lambda: None)
        )
    assert len(calls) == 2 and len(rec["ops"]["a"]) == 4 and len(rec["ops"]["b"]) == 2
    assert len(rec["wall"]) == len(rec["cpu"]) == len(rec["stolen"]) == 2


# ------------------------------------------------------------------ other processes (idle.py)
def test_others_share_is_the_busy_time_less_our_own(monkeypatch):
    import os

    from astrasim.validation.idle import others_share

    hz = os.sysconf("SC_CLK_TCK")
    # 2 CPUs for 1 s = 2 hz jiffies; 1.5 s of it busy, 0.5 s of which was this process
    assert others_share((0, 0), (int(1.5 * hz), 2 * hz), 0.5) == pytest.approx(0.5)
    assert others_share((0, 0), (int(0.5 * hz), 2 * hz), 0.5) == 0.0  # all of it ours
    assert others_share((5, 5), (5, 5), 0.0) == 0.0  # no time passed: unknown


def test_wait_idle_waits_for_the_others_and_gives_up_after_the_limit(monkeypatch):
    from astrasim.validation import idle

    shares = iter([0.9, 0.5, 0.05])
    monkeypatch.setattr(idle, "measure_others", lambda fn: (None, next(shares)))
    monkeypatch.setattr(idle.time, "sleep", lambda s: None)
    said = []
    assert idle.wait_idle(said.append, "x") == 0.05
    assert len(said) == 1 and "waiting for the CPUs to go idle before x (other processes use 90%)" in said[0]
    clock = iter(range(0, 10_000, 100))
    monkeypatch.setattr(idle.time, "monotonic", lambda: next(clock))
    monkeypatch.setattr(idle, "measure_others", lambda fn: (None, 0.8))
    said.clear()
    assert idle.wait_idle(said.append, "y") == 0.8
    assert "runs anyway" in said[-1]
