"""Hostile input, class by class (issue 15), part 2: outputs, workers and Dask, Ctrl-C, grid size,
resume, the paper comparison and printed ratios. Nothing half-written; nothing silently wrong."""

import json
import socket
import threading
import time
from pathlib import Path

import pandas as pd
import pytest
from hostile import (  # noqa: F401 - env_fixture: the `env` fixture
    CUSTOM_OK,
    ROOT_USER,
    env_fixture,
    nothing_written,
    refused,
    runner,
    scenario,
)

from astrasim.cli import app
from astrasim.errors import UserError
from astrasim.models import get_model
from astrasim.strategies.synthetic import synthetic_profile


# ----------------------------------------------------------------------------- output paths
def test_out_paths_that_cannot_be_written_are_refused(env):
    p = scenario(env)
    (env / "adir").mkdir()
    (env / "afile").write_text("x")
    refused(["sweep", p, "--out", env / "adir", "--no-progress"], "--out")
    refused(["sweep", p, "--out", env / "afile" / "r.csv", "--no-progress"], "--out")
    refused(["sweep", p, "--out", env / "adir.csv" / "..", "--no-progress"], "--out")
    assert (env / "afile").read_text() == "x"


@pytest.mark.parametrize("which", ["scenario", "profile", "profile extension", "trace"])
def test_out_onto_an_input_is_refused_and_the_input_kept(env, which):
    p = scenario(env)
    target = {
        "scenario": p.with_suffix(".csv"),
        "profile": env / "profiles" / "cpu.csv",
        "profile extension": env / "profiles" / "cpu.extra.csv",
        "trace": env / "t.csv",
    }[which]
    if which == "trace":
        target.write_text("time_s,bandwidth_mbps\n0,50\n")
        p = scenario(env, network={"trace": "t.csv"})
    if which == "scenario":  # a scenario whose file is a .csv name: the only way --out can equal it
        target.write_text(p.read_text())
        p = target
    if which == "profile extension":
        (env / "profiles" / "cpu.csv").rename(target)
        synthetic_profile([get_model("vit-base")], devices=(2,)).to_csv(env / "profiles" / "cpu.csv", index=False)
    before = target.read_bytes()
    line = refused(["sweep", p, "--out", target, "--no-progress", "--no-plots"], "--out")
    assert "input" in line
    assert target.read_bytes() == before


@pytest.mark.parametrize("name", ["../escape", "a/b", "/abs", ".hidden", "x\\y"])
def test_a_scenario_name_cannot_leave_results(env, name):
    p = scenario(env, file="n", name=name)
    refused(["sweep", p, "--no-progress"], "name")
    assert not (env / "escape.csv").exists() and nothing_written(env)


def test_unwritable_folder_is_refused(env):
    """Folders that refuse new files for whoever runs the tests, root (CI) included: procfs and
    sysfs take no new file from anyone, though their permission bits (and os.access, for root)
    say they would, so only creating a file finds out (fileio.probe_output); for a user, also a
    folder of theirs without write permission. Each as the output's folder and as the ancestor of
    one still to be made."""
    folders = [Path("/proc"), Path("/sys")]
    if not ROOT_USER:  # permission bits do not stop root
        locked = env / "locked"
        locked.mkdir()
        locked.chmod(0o500)
        folders.append(locked)
    try:
        for folder in folders:
            assert folder.is_dir(), folder
            for out in (folder / "astrasim-r.csv", folder / "astrasim-new" / "r.csv"):
                refused(["sweep", scenario(env), "--out", out, "--no-progress"], "--out")
                assert not out.exists() and not out.parent.exists() or out.parent == folder
        assert nothing_written(env)
    finally:
        if not ROOT_USER:
            locked.chmod(0o700)


def test_other_commands_check_their_outputs_first(env):
    (env / "adir").mkdir()
    (env / "afile").write_text("x")
    refused(["simulate", scenario(env), "--trace", env / "adir"], "--trace")
    refused(["simulate", scenario(env), "--trace", env / "profiles" / "cpu.csv"], "--trace")
    refused(["profile", "--models", "gpt2-s", "--out", env / "afile" / "p.csv"], "--out")
    refused(["accuracy", "--out", env / "adir"], "--out")
    plan = env / "plan.yaml"
    plan.write_text("model: gpt2-s\nlatency_target_s: 1\ndevices: [raspberry-pi-5]\nnetworks: [wifi-20mbps]\n")
    refused(["plan", plan, "--out", env / "adir"], "--out")
    refused(["plan", plan, "--out", plan], "--out")
    assert (env / "afile").read_text() == "x"


def test_accuracy_writes_to_results_by_default():
    import typer.main

    command = typer.main.get_command(app).commands["accuracy"]
    out = next(p for p in command.params if p.name == "out")
    assert str(out.default) == "results/accuracy_measured.csv"


# ----------------------------------------------------------------------------- workers and Dask
def test_too_many_workers_is_refused(env):
    line = refused(["sweep", scenario(env), "--workers", "1000", "--no-progress"], "--workers")
    assert "per CPU" in line
    assert nothing_written(env)


def test_dask_where_nothing_listens_fails_fast(env):
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    t0 = time.perf_counter()
    refused(["sweep", scenario(env), "--dask", f"tcp://127.0.0.1:{port}", "--no-progress"], "--dask")
    assert time.perf_counter() - t0 < 30 and nothing_written(env)  # no hang


def test_dask_port_that_never_answers_times_out(env, monkeypatch):
    monkeypatch.setattr("astrasim.executors.DASK_TIMEOUT_S", 0.5)
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(8)
    accepted = []
    stop = threading.Event()

    def accept():  # accept and say nothing
        server.settimeout(0.1)
        while not stop.is_set():
            try:
                accepted.append(server.accept()[0])
            except OSError:
                pass

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        t0 = time.perf_counter()
        line = refused(
            ["sweep", scenario(env), "--dask", f"tcp://127.0.0.1:{server.getsockname()[1]}", "--no-progress"], "--dask"
        )
        assert "did not answer" in line and time.perf_counter() - t0 < 30  # no hang
    finally:
        stop.set()
        thread.join()
        server.close()
    assert nothing_written(env)


# ----------------------------------------------------------------------------- Ctrl-C in profile
@pytest.mark.parametrize("previous", [False, True])
def test_ctrl_c_during_profile_exits_130_and_leaves_no_file(env, monkeypatch, previous):
    pytest.importorskip("torch")
    import astrasim.profiling as profiling

    out = env / "prof.csv"
    if previous:
        out.write_text("previous\n")

    def interrupted(*a, **k):
        raise KeyboardInterrupt

    monkeypatch.setattr(profiling, "profile_ops", interrupted)
    res = runner.invoke(
        app,
        [
            "profile",
            "--models",
            "gpt2-s",
            "--strategies",
            "tp",
            "--devices",
            "2",
            "--tokens",
            "16",
            "--quiet",
            "--out",
            str(out),
        ],
    )
    assert res.exit_code == 130, res.output
    assert res.stderr.strip() == "interrupted"
    assert (out.read_text() == "previous\n") if previous else not out.exists()
    assert sorted(p.name for p in env.iterdir() if p.name.startswith(".prof")) == []


@pytest.mark.slow
def test_sigint_to_a_real_profile_run_exits_130_without_a_file(env):
    """Even when started with SIGINT ignored (a background job of a shell) and interrupted while
    the libraries load or while measuring."""
    import signal
    import subprocess
    import sys

    out = env / "prof.csv"
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "astrasim",
            "profile",
            "--models",
            "gpt2-s",
            "--strategies",
            "tp",
            "--devices",
            "2",
            "--tokens",
            "64",
            "--repeats",
            "100000",
            "--quiet",
            "--out",
            str(out),
        ],
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_IGN),
    )
    time.sleep(4)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130 and "Traceback" not in err, (proc.returncode, err[-2000:])
    assert not out.exists() and not list(env.glob(".prof.csv.*"))


# ----------------------------------------------------------------------------- grid size
def test_a_huge_grid_is_refused_at_once_without_building_it(env):
    p = scenario(
        env,
        devices=[2, 4],
        network={"bandwidth_mbps": list(range(1, 1001)), "loss_rate": [i / 1000 for i in range(500)]},
        strategies=["single", "tp", "sp"],
    )
    t0 = time.perf_counter()
    line = refused(["sweep", p, "--no-progress"], "--max-points")
    assert "2,500,000 points" in line and time.perf_counter() - t0 < 60  # not minutes
    assert nothing_written(env)


@pytest.mark.parametrize(
    "fields",
    [
        {},
        {"devices": [2, 4, 4], "network": {"bandwidth_mbps": [10, 10.0, 20], "topology": ["wifi", "mesh"]}},
        {"strategies": ["single", "single", {"name": "astra", "groups": [1, 1, 32]}, "tp"], "tokens": [64, 128]},
        {"hardware": {"speed": [1, 2], "speeds": [1, 0.5, 1, 1]}, "devices": [2, 4], "element_bits": [16, 32]},
    ],
)
def test_count_points_equals_the_expanded_grid(env, fields):
    from astrasim.scenario import load_scenario
    from astrasim.scenario.grid import count_points

    sc = load_scenario(scenario(env, **fields))
    assert count_points(sc) == len(sc.points())


def test_max_points_allows_a_larger_grid(env):
    from astrasim.sweep import run_sweep

    p = scenario(env, network={"bandwidth_mbps": [10, 20, 50]})
    with pytest.raises(UserError, match="--max-points 6"):
        run_sweep(p, out=env / "r.csv", progress=False, max_points=5)
    assert len(run_sweep(p, out=env / "r.csv", progress=False, max_points=6)) == 6


# ----------------------------------------------------------------------------- resume
def _sweep(env, p, out, *extra):
    res = runner.invoke(app, ["sweep", str(p), "--out", str(out), "--no-progress", "--no-plots", *extra])
    assert res.exit_code == 0, res.output
    return pd.read_csv(out), res


def test_resume_recomputes_rows_whose_profile_changed(env):
    p, out = scenario(env), env / "r.csv"
    first, _ = _sweep(env, p, out)
    prof = env / "profiles" / "cpu.csv"
    df = pd.read_csv(prof)
    df[["median_s", "p10_s", "p90_s"]] *= 2
    df.to_csv(prof, index=False)
    again, res = _sweep(env, p, out, "--resume")
    assert "recomputing 2" in res.stderr
    assert (again["latency_s"] > first["latency_s"] * 1.05).all()
    fresh, _ = _sweep(env, p, env / "fresh.csv")
    assert again.equals(fresh)


def test_resume_recomputes_rows_whose_extension_file_or_custom_graph_changed(env):
    p, out = scenario(env, network={"topology": "custom", "custom": CUSTOM_OK}), env / "r.csv"
    first, _ = _sweep(env, p, out)
    slow = json.loads(json.dumps(CUSTOM_OK))
    for e in slow["edges"]:
        e["bandwidth_mbps"] = 5
    p = scenario(env, network={"topology": "custom", "custom": slow})  # same scenario name, other graph
    again, _ = _sweep(env, p, out, "--resume")
    tp = again["strategy"] == "tp"
    assert (again.loc[tp, "latency_s"] > first.loc[tp, "latency_s"]).all()
    ext = synthetic_profile([get_model("gpt2-s")], devices=(2,))
    ext = ext[ext["strategy"] == "tp"].assign(median_s=lambda d: d["median_s"] * 3)
    ext.to_csv(env / "profiles" / "cpu.slow.csv", index=False)
    third, _ = _sweep(env, p, out, "--resume")
    assert (third.loc[tp, "latency_s"] > again.loc[tp, "latency_s"]).all()


def test_resume_keeps_rows_of_unchanged_inputs(env):
    p, out = scenario(env), env / "r.csv"
    first, _ = _sweep(env, p, out)
    text = out.read_text().replace(repr(float(first.loc[1, "latency_s"])), "123.0", 1)
    out.write_text(text)
    again, res = _sweep(env, p, out, "--resume")
    assert again.loc[1, "latency_s"] == 123.0 and "recomputing" not in res.stderr


@pytest.mark.parametrize("garbage", ["garbage", "nan", "-1", "inf", ""])
def test_resume_recomputes_a_complete_row_with_garbage_values(env, garbage):
    p, out = scenario(env), env / "r.csv"
    first, _ = _sweep(env, p, out)
    lines = out.read_text().splitlines(keepends=True)
    lines[1] = lines[1].replace(repr(float(first.loc[0, "latency_s"])), garbage, 1)
    out.write_text("".join(lines))
    again, res = _sweep(env, p, out, "--resume")
    assert "invalid" in res.stderr
    assert again.equals(first)


def test_a_fingerprint_file_sits_beside_the_results(env):
    p, out = scenario(env), env / "r.csv"
    _sweep(env, p, out)
    assert (env / "r.csv.inputs").read_text().count("\n") == 2


# ----------------------------------------------------------------------------- paper, speedup text
def test_paper_comparison_exits_2_with_one_line(env, capsys):
    from astrasim.analysis.paper import main

    with pytest.raises(SystemExit) as exc:
        main(["--scenario", str(env / "none.yaml")])
    assert exc.value.code == 2 and "--scenario" in capsys.readouterr().err
    (env / "foreign.csv").write_text("a,b\n1,2\n")
    with pytest.raises(SystemExit) as exc:
        main(["--results", str(env / "foreign.csv")])
    err = capsys.readouterr().err.strip().splitlines()
    assert exc.value.code == 2 and len(err) == 1 and "not an astrasim results file" in err[0]


@pytest.mark.parametrize(
    "x, text",
    [(0.005, "0.005x"), (2.6412, "2.64x"), (1.0, "1x"), (15.25, "15.2x"), (250.4, "250x"), (float("nan"), "-")],
)
def test_speedups_print_significant_digits(x, text):
    from astrasim.results import format_ratio

    assert format_ratio(x) == text
