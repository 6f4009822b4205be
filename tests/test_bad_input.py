"""Hostile input, class by class (issue 15), part 1: networks, traces, profiles, YAML, custom
models. Every rejection is one line naming the field, exit 2, nothing written or overwritten."""

import time

import pytest
import yaml
from hostile import CUSTOM_OK, env_fixture, nothing_written, refused, runner, scenario  # noqa: F401 - env_fixture: the `env` fixture
from hostile import ROOT as ROOT_DIR

from astrasim.cli import app
from astrasim.errors import UserError
from astrasim.models import get_model
from astrasim.strategies.synthetic import synthetic_profile

# ----------------------------------------------------------------------------- networks and traces
BAD_GRAPHS = [
    (
        "disconnected",
        {"edges": [{"u": 0, "v": "a", "bandwidth_mbps": 1}, {"u": 1, "v": "b", "bandwidth_mbps": 1}]},
        "network.custom.edges",
        "not connected",
    ),
    ("missing device", {"edges": [{"u": 0, "v": "sw", "bandwidth_mbps": 1}]}, "network.custom.edges", "not nodes"),
    ("unknown medium", {"edges": [{"u": 0, "v": 1, "medium": "air"}]}, "network.custom.edges[0].medium", "medium"),
    (
        "self-loop",
        {"edges": [{"u": 0, "v": 1, "bandwidth_mbps": 1}, {"u": 1, "v": 1, "bandwidth_mbps": 1}]},
        "network.custom.edges[1]",
        "self-loop",
    ),
    (
        "negative latency",
        {"edges": [{"u": 0, "v": 1, "bandwidth_mbps": 1, "latency_s": -1}]},
        "network.custom.edges[0].latency_s",
        ">= 0",
    ),
    (
        "zero bandwidth",
        {"edges": [{"u": 0, "v": 1, "bandwidth_mbps": 0}]},
        "network.custom.edges[0].bandwidth_mbps",
        "> 0",
    ),
    (
        "NaN bandwidth",
        {"edges": [{"u": 0, "v": 1, "bandwidth_mbps": float("nan")}]},
        "network.custom.edges[0].bandwidth_mbps",
        "finite",
    ),
    (
        "text bandwidth",
        {"edges": [{"u": 0, "v": 1, "bandwidth_mbps": "fast"}]},
        "network.custom.edges[0].bandwidth_mbps",
        "number",
    ),
    (
        "duplicate edge",
        {"edges": [{"u": 0, "v": 1, "bandwidth_mbps": 1}, {"u": 1, "v": 0, "bandwidth_mbps": 2}]},
        "network.custom.edges[1]",
        "duplicate",
    ),
    (
        "edge-key typo",
        {"edges": [{"u": 0, "v": 1, "bandwdith_mbps": 1}]},
        "network.custom.edges[0].bandwdith_mbps",
        "unknown key",
    ),
    ("graph-key typo", {"egdes": [], **CUSTOM_OK}, "network.custom.egdes", "unknown key"),
    (
        "medium typo",
        {"media": {"air": {"bandwidth_mbps": 10, "loss": 0.1}}, "edges": [{"u": 0, "v": 1, "medium": "air"}]},
        "network.custom.media.air.loss",
        "unknown key",
    ),
    (
        "trace ends at 0",
        {"edges": [{"u": 0, "v": 1, "bandwidth_mbps": 1, "bandwidth_trace": [[0, 5], [1, 0]]}]},
        "network.custom.edges[0].bandwidth_trace[1]",
        "forever",
    ),
]


@pytest.mark.parametrize("what, graph, field, words", BAD_GRAPHS, ids=[b[0] for b in BAD_GRAPHS])
def test_custom_graph_mistakes_stop_before_any_output(env, what, graph, field, words):
    p = scenario(env, network={"topology": "custom", "custom": graph})
    line = refused(["sweep", p, "--no-progress", "--no-plots"], field)
    assert words in line
    assert nothing_written(env)


def test_a_good_custom_graph_runs(env):
    p = scenario(env, network={"topology": "custom", "custom": CUSTOM_OK})
    res = runner.invoke(app, ["sweep", str(p), "--no-progress", "--no-plots"])
    assert res.exit_code == 0, res.output


BAD_TRACES = [
    ("times not increasing", "time_s,bandwidth_mbps\n0,10\n2,5\n1,20\n", "increasing"),
    ("negative time", "time_s,bandwidth_mbps\n-1,10\n", ">= 0"),
    ("NaN bandwidth", "time_s,bandwidth_mbps\n0,nan\n", "finite"),
    ("negative bandwidth", "time_s,bandwidth_mbps\n0,-5\n", ">= 0"),
    ("text bandwidth", "time_s,bandwidth_mbps\n0,fast\n", "not a number"),
    ("empty file", "", "empty"),
    ("no header", "0,10\n1,20\n", "header"),
    ("header only", "time_s,bandwidth_mbps\n", "at least one"),
    ("zero forever", "time_s,bandwidth_mbps\n0,10\n0.001,0\n", "never finishes"),
    ("binary", b"\xff\xfe\x00\x81" * 50, "cannot read"),
]


@pytest.mark.parametrize("what, text, words", BAD_TRACES, ids=[b[0] for b in BAD_TRACES])
def test_trace_mistakes_stop_before_any_output(env, what, text, words):
    t = env / "trace.csv"
    t.write_bytes(text if isinstance(text, bytes) else text.encode())
    p = scenario(env, network={"trace": "trace.csv"})
    line = refused(["sweep", p, "--no-progress", "--no-plots"], "network.trace")
    assert words in line
    assert nothing_written(env)


def test_a_stuck_simulation_is_one_line(env, monkeypatch):
    from astrasim.engine.result import DeadlockError

    def stuck(*a, **k):
        raise DeadlockError("message 'm' can never arrive (0 Mbps from t=1 s)\n  device 1 waits", [1], ["m"])

    monkeypatch.setattr("astrasim.pointrun.run_point", stuck)
    line = refused(["simulate", scenario(env)], "network")
    assert "never arrive" in line


# ----------------------------------------------------------------------------- profiles
PROFILE_FAULTS = [
    ("empty", lambda rows: "", "is empty"),
    ("binary", lambda rows: bytes(range(256)) * 8, "profile"),
    ("header only", lambda rows: rows[0] + "\n", "no rows"),
    ("missing column", lambda rows: "\n".join(",".join(r.split(",")[:-1]) for r in rows), "lacks column"),
    ("NaN time", lambda rows: _cell(rows, "median_s", "nan"), "row 2 column median_s"),
    ("negative time", lambda rows: _cell(rows, "median_s", "-0.1"), "row 2 column median_s"),
    ("text time", lambda rows: _cell(rows, "p90_s", "slow"), "row 2 column p90_s"),
    ("zero time", lambda rows: _cell(rows, "median_s", "0"), "row 2 column median_s"),
    ("fractional devices", lambda rows: _cell(rows, "devices", "1.5"), "row 2 column devices"),
]


def _cell(rows, col, value):
    header = rows[0].split(",")
    first = rows[1].split(",")
    first[header.index(col)] = value
    return "\n".join([rows[0], ",".join(first), *rows[2:]]) + "\n"


@pytest.mark.parametrize("what, fault, words", PROFILE_FAULTS, ids=[f[0] for f in PROFILE_FAULTS])
def test_corrupt_profile_is_one_line_naming_file_row_and_column(env, what, fault, words):
    from astrasim.compute.profiles import read_profile_table

    rows = synthetic_profile([get_model("gpt2-s")], devices=(2,)).to_csv(index=False).splitlines()
    rows = [r for r in rows if '"' not in r]  # keep the naive CSV edit simple
    bad = env / "bad.csv"
    data = fault(rows)
    bad.write_bytes(data if isinstance(data, bytes) else data.encode())
    with pytest.raises(UserError) as err:
        read_profile_table(bad)
    assert "bad.csv" in str(err.value) and words in str(err.value)
    line = refused(["sweep", scenario(env, hardware={"profile": "bad.csv"}), "--no-progress"], "hardware.profile")
    assert "bad.csv" in line
    assert nothing_written(env)


def test_profiler_reads_through_the_same_reader(env):
    pytest.importorskip("torch")
    from astrasim.profiling import read_profile

    (env / "p.csv").write_text("")
    with pytest.raises(UserError, match="profile: profile '.*p.csv' is empty"):
        read_profile(env / "p.csv")


def test_extra_optional_profile_columns_are_kept(env):
    from astrasim.compute.profiles import read_profile_table

    df = synthetic_profile([get_model("gpt2-s")], devices=(2,))
    df["noise_flag"] = "ok"
    df.to_csv(env / "x.csv", index=False)
    assert "noise_flag" in read_profile_table(env / "x.csv").columns


# ----------------------------------------------------------------------------- YAML
BOMB = "a: &a [x, x, x, x, x, x, x, x, x]\nb: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a]\n" + "".join(
    f"{c}: &{c} [{', '.join(['*' + p] * 9)}]\n" for p, c in zip("bcdefgh", "cdefghi")
)
YAML_FAULTS = [
    ("alias bomb", BOMB, "not supported"),
    ("anchor", "devices: &d 2\n", "anchors"),
    ("deep nesting", "x: " + "[" * 5000 + "]" * 5000 + "\n", "nested deeper"),
    ("duplicate keys", "devices: 2\ndevices: 4\n", "duplicate key 'devices'"),
    ("nested duplicate", "network:\n  topology: wifi\n  topology: mesh\n", "duplicate key 'topology'"),
]


@pytest.mark.parametrize("what, text, words", YAML_FAULTS, ids=[f[0] for f in YAML_FAULTS])
def test_yaml_faults_in_every_reader(env, what, text, words):
    from astrasim.analysis.planning import load_networks, load_plan
    from astrasim.compute.catalog import load_catalog
    from astrasim.models import load_model_yaml

    f = env / "f.yaml"
    f.write_text(text)
    t0 = time.perf_counter()
    line = refused(["sweep", f, "--no-progress"], "scenario")
    assert words in line
    for reader in (load_model_yaml, load_plan, load_networks, load_catalog):
        with pytest.raises(UserError, match=words):
            reader(f)
    with pytest.raises(UserError, match=words):
        from astrasim.validation.settings import load_settings

        load_settings(f)
    assert time.perf_counter() - t0 < 60  # no hang (generous: the machine may be loaded)
    assert nothing_written(env)


def test_set_values_use_the_strict_loader(env):
    refused(["sweep", scenario(env), "--set", "network={a: 1, a: 2}"], "--set")


# ----------------------------------------------------------------------------- custom models
@pytest.mark.parametrize(
    "field, value",
    [
        ("layers", 12.5),
        ("layers", "12"),
        ("layers", True),
        ("hidden", None),
        ("causal", "yes"),
        ("activation", "relu"),
        ("name", ""),
    ],
)
def test_custom_model_types_are_checked(env, field, value):
    from astrasim.models import model_from_dict

    data = {"name": "tiny", "layers": 2, "hidden": 64, "heads": 4, "mlp_hidden": 128, "tokens": 32, field: value}
    with pytest.raises(UserError, match=f"model.{field}"):
        model_from_dict(data)
    (env / "m.yaml").write_text(yaml.safe_dump(data))
    refused(["sweep", scenario(env, models=["m.yaml"]), "--no-progress"], "models[0]")


def test_a_custom_model_cannot_borrow_a_builtin_name(env):
    from astrasim.models import model_from_dict

    wide = {**get_model("gpt2-s").to_dict(), "hidden": 1536, "mlp_hidden": 6144}
    with pytest.raises(UserError, match="model.name.*built-in"):
        model_from_dict(wide)
    assert model_from_dict(get_model("gpt2-s").to_dict()) == get_model("gpt2-s")  # the same shape is fine


def test_missing_custom_profile_names_the_model_file(env):
    (env / "mine.yaml").write_text("name: mine\nlayers: 2\nhidden: 64\nheads: 4\nmlp_hidden: 128\ntokens: 32\n")
    line = refused(["sweep", scenario(env, models=["mine.yaml"]), "--no-progress"], "hardware.profile")
    assert "--models " + str(env / "mine.yaml") in line or "--models mine.yaml" in line


# ----------------------------------------------------------------------------- issue 25
VIRTUAL = [p for p in ("/proc", "/sys") if __import__("os").path.isdir(p)]


@pytest.mark.skipif(not VIRTUAL, reason="no /proc or /sys here")
@pytest.mark.parametrize("root", VIRTUAL)
def test_outputs_in_a_folder_that_refuses_files_are_one_line_before_any_work(env, root, monkeypatch):
    """/proc and /sys pass the permission checks but refuse new files: every writing command says
    so in one line, exit 2, before any work (the work would raise here), nothing left."""
    import astrasim.pointrun
    import astrasim.profiling.profiler

    def no_work(*a, **k):
        raise AssertionError("worked before checking its output")

    monkeypatch.setattr(astrasim.pointrun, "simulate_point", no_work)
    monkeypatch.setattr(astrasim.pointrun.EngineInputs, "run", no_work)
    plan = env / "plan.yaml"
    plan.write_text("model: gpt2-s\nlatency_target_s: 1\ndevices: [raspberry-pi-5]\nnetworks: [wifi-20mbps]\n")
    p = scenario(env)
    runs = ROOT_DIR / "validation" / "ns3" / "runs.csv"
    for args, field in [
        (["sweep", p, "--out", f"{root}/r.csv", "--no-progress"], "--out"),
        (["sweep", p, "--out", f"{root}/a/b/r.parquet", "--no-progress"], "--out"),
        (["simulate", p, "--trace", f"{root}/t.json"], "--trace"),
        (["plan", plan, "--out", f"{root}/p.csv", "--no-progress"], "--out"),
        (["plan", plan, "--plot", f"{root}/p.png", "--no-progress"], "--plot"),
        (["profile", "--models", "gpt2-s", "--out", f"{root}/p.csv"], "--out"),
        (["accuracy", "--out", f"{root}/a.csv"], "--out"),
        (["crosscheck", "--quick", "--reuse-runs", runs, "--out", f"{root}/cc"], "--out"),
        (["validate", "--reuse-measurements", ROOT_DIR / "validation", "--out", f"{root}/v"], "--out"),
    ]:
        line = refused(args, field)
        assert "cannot create" in line, line
    assert nothing_written(env)


def test_probe_leaves_nothing_behind(tmp_path):
    from astrasim.fileio import check_output_path

    check_output_path(tmp_path / "r.csv", "--out")
    check_output_path(tmp_path / "new" / "deeper" / "r.csv", "--out")
    assert list(tmp_path.iterdir()) == []


def test_crosscheck_reuse_runs_of_another_grid_is_one_line(env):
    import pandas as pd

    runs = pd.read_csv(ROOT_DIR / "validation" / "ns3" / "runs.csv")
    runs["key"] = "another grid " + runs["key"].astype(str)
    runs.to_csv(env / "runs.csv", index=False)
    line = refused(["crosscheck", "--quick", "--reuse-runs", env / "runs.csv", "--out", env / "cc"], "reuse-runs")
    assert "no complete run of this grid" in line and not (env / "cc").exists()


@pytest.mark.parametrize(
    "field, hardware",
    [
        ("hardware.devices", {"devices": ["jetson-orin-nano", "raspberry-pi-5", "jetson-agx-orin"]}),
        ("hardware.speeds", {"speeds": [1.0, 0.5, 4.0]}),
    ],
)
def test_per_device_lists_longer_than_the_device_count_are_refused(env, field, hardware):
    """An extra listed device would be single's baseline while no other row uses it (the file
    contradicted itself); the list names exactly the devices of the largest count."""
    line = refused(["sweep", scenario(env, hardware=hardware), "--no-progress"], field)
    assert "exactly one" in line and nothing_written(env)


def test_the_single_baseline_is_the_same_in_every_row(env):
    """A mixed fleet swept over N = 2 and 4: every row's single_latency_s is the single row's (the
    fastest listed device), not the fastest of the row's own first N."""
    from astrasim.scenario import load_scenario
    from astrasim.sweep import run_sweep

    fleet = ["raspberry-pi-5", "raspberry-pi-5", "jetson-orin-nano", "raspberry-pi-5"]
    sc = load_scenario(scenario(env, devices=[2, 4], hardware={"devices": fleet}))
    df = run_sweep(sc, out=env / "r.csv", progress=False)
    single = df.loc[df["strategy"] == "single"]
    assert len(single) == 1 and single["hardware"].iloc[0] == "jetson-orin-nano"
    assert (df["single_latency_s"] == single["latency_s"].iloc[0]).all()


def test_headroom_above_a_devices_memory_is_refused(env):
    line = refused(
        ["sweep", scenario(env, hardware={"device": "raspberry-pi-5"}, memory={"headroom_gb": 8}), "--no-progress"],
        "memory.headroom_gb",
    )
    assert "raspberry-pi-5" in line and nothing_written(env)


def test_an_empty_knob_list_is_refused_in_a_sweep_and_a_plan(env):
    refused(
        ["sweep", scenario(env, strategies=[{"name": "astra", "groups": []}]), "--no-progress"], "strategies[0].groups"
    )
    plan = env / "plan.yaml"
    plan.write_text(
        "model: gpt2-s\nlatency_target_s: 1\ndevices: [raspberry-pi-5]\nnetworks: [wifi-20mbps]\n"
        "strategies: [single, {name: astra, groups: []}]\n"
    )
    line = refused(["plan", plan, "--no-progress"], "plan.strategies")
    assert "no variant" in line


def test_dask_address_of_a_server_that_is_not_dask_is_one_line_at_once(env):
    """Something answers, but not as Dask (an SSH banner): one line, no traceback from the Dask
    client's destructor 20 s later (the client is closed at once); run in a child process so the
    destructor runs at its exit."""
    import socket
    import subprocess
    import sys
    import threading

    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(8)
    server.settimeout(0.2)
    stop = threading.Event()
    conns = []

    def serve():
        while not stop.is_set():
            try:
                c, _ = server.accept()
            except OSError:
                continue
            conns.append(c)
            c.sendall(b"SSH-2.0-OpenSSH_9.0\r\n")

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        t0 = time.perf_counter()
        res = subprocess.run(
            [
                sys.executable,
                "-m",
                "astrasim",
                "sweep",
                str(scenario(env)),
                "--no-progress",
                "--dask",
                f"tcp://127.0.0.1:{server.getsockname()[1]}",
            ],
            capture_output=True,
            text=True,
            timeout=120,
            cwd=env,
            env={**__import__("os").environ, "PYTHONPATH": str(ROOT_DIR)},
        )
        took = time.perf_counter() - t0
    finally:
        stop.set()
        thread.join()
        server.close()
        for c in conns:
            c.close()
    assert res.returncode == 2, res.stderr
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: --dask"), res.stderr
    assert took < 15 and nothing_written(env)


def test_a_stream_too_large_for_memory_is_refused_before_any_point_runs(env):
    """The schema's 10^6 requests exhausted 4 GB within 35 s: a stream may hold MAX_STREAM_OPS ops
    (measured 1.5-2.5 GB at the cap: bench/bench_stream_memory.py); one line names the most
    requests the point allows, nothing written."""
    from astrasim.streams import MAX_STREAM_OPS, check_stream_size

    line = refused(
        [
            "sweep",
            scenario(env, workload={"arrival": "periodic", "rate_per_s": 1, "requests": 1_000_000}),
            "--no-progress",
        ],
        "workload.requests",
    )
    assert "use at most" in line and nothing_written(env)
    check_stream_size(100, MAX_STREAM_OPS // 100)  # at the cap: accepted
    with pytest.raises(UserError, match=f"at most {MAX_STREAM_OPS // 100:,} requests"):
        check_stream_size(100, MAX_STREAM_OPS // 100 + 1)
