"""Hostile input, class by class (issue 15), part 1: networks, traces, profiles, YAML, custom
models. Every rejection is one line naming the field, exit 2, nothing written or overwritten."""

import time

import pytest
import yaml

from astrasim.errors import UserError
from astrasim.models import get_model
from astrasim.strategies.synthetic import synthetic_profile
from astrasim.cli import app
from hostile import CUSTOM_OK, env, nothing_written, refused, runner, scenario  # noqa: F401 - env is a fixture

# ----------------------------------------------------------------------------- networks and traces
BAD_GRAPHS = [
    ("disconnected", {"edges": [{"u": 0, "v": "a", "bandwidth_mbps": 1}, {"u": 1, "v": "b", "bandwidth_mbps": 1}]},
     "network.custom.edges", "not connected"),
    ("missing device", {"edges": [{"u": 0, "v": "sw", "bandwidth_mbps": 1}]}, "network.custom.edges", "not nodes"),
    ("unknown medium", {"edges": [{"u": 0, "v": 1, "medium": "air"}]}, "network.custom.edges[0].medium", "medium"),
    ("self-loop", {"edges": [{"u": 0, "v": 1, "bandwidth_mbps": 1}, {"u": 1, "v": 1, "bandwidth_mbps": 1}]},
     "network.custom.edges[1]", "self-loop"),
    ("negative latency", {"edges": [{"u": 0, "v": 1, "bandwidth_mbps": 1, "latency_s": -1}]},
     "network.custom.edges[0].latency_s", ">= 0"),
    ("zero bandwidth", {"edges": [{"u": 0, "v": 1, "bandwidth_mbps": 0}]}, "network.custom.edges[0].bandwidth_mbps",
     "> 0"),
    ("NaN bandwidth", {"edges": [{"u": 0, "v": 1, "bandwidth_mbps": float("nan")}]},
     "network.custom.edges[0].bandwidth_mbps", "finite"),
    ("text bandwidth", {"edges": [{"u": 0, "v": 1, "bandwidth_mbps": "fast"}]},
     "network.custom.edges[0].bandwidth_mbps", "number"),
    ("duplicate edge", {"edges": [{"u": 0, "v": 1, "bandwidth_mbps": 1}, {"u": 1, "v": 0, "bandwidth_mbps": 2}]},
     "network.custom.edges[1]", "duplicate"),
    ("edge-key typo", {"edges": [{"u": 0, "v": 1, "bandwdith_mbps": 1}]}, "network.custom.edges[0].bandwdith_mbps",
     "unknown key"),
    ("graph-key typo", {"egdes": [], **CUSTOM_OK}, "network.custom.egdes", "unknown key"),
    ("medium typo", {"media": {"air": {"bandwidth_mbps": 10, "loss": 0.1}}, "edges": [{"u": 0, "v": 1,
                                                                                       "medium": "air"}]},
     "network.custom.media.air.loss", "unknown key"),
    ("trace ends at 0", {"edges": [{"u": 0, "v": 1, "bandwidth_mbps": 1, "bandwidth_trace": [[0, 5], [1, 0]]}]},
     "network.custom.edges[0].bandwidth_trace[1]", "forever"),
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
    f"{c}: &{c} [{', '.join(['*' + p] * 9)}]\n" for p, c in zip("bcdefgh", "cdefghi"))
YAML_FAULTS = [
    ("alias bomb", BOMB, "not supported"),
    ("anchor", "devices: &d 2\n", "anchors"),
    ("deep nesting", "x: " + "[" * 5000 + "]" * 5000 + "\n", "nested deeper"),
    ("duplicate keys", "devices: 2\ndevices: 4\n", "duplicate key 'devices'"),
    ("nested duplicate", "network:\n  topology: wifi\n  topology: mesh\n", "duplicate key 'topology'"),
]


@pytest.mark.parametrize("what, text, words", YAML_FAULTS, ids=[f[0] for f in YAML_FAULTS])
def test_yaml_faults_in_every_reader(env, what, text, words):
    from astrasim.analysis.planning import load_plan, load_networks
    from astrasim.models import load_model_yaml
    from astrasim.compute.catalog import load_catalog

    f = env / "f.yaml"
    f.write_text(text)
    t0 = time.perf_counter()
    line = refused(["sweep", f, "--no-progress"], "scenario")
    assert words in line
    for reader in (load_model_yaml, load_plan, load_networks, load_catalog):
        with pytest.raises(UserError, match=words):
            reader(f)
    with pytest.raises(UserError, match=words):
        from astrasim.validation.compare import load_settings
        load_settings(f)
    assert time.perf_counter() - t0 < 60  # no hang (generous: the machine may be loaded)
    assert nothing_written(env)


def test_set_values_use_the_strict_loader(env):
    refused(["sweep", scenario(env), "--set", "network={a: 1, a: 2}"], "--set")


# ----------------------------------------------------------------------------- custom models
@pytest.mark.parametrize("field, value", [("layers", 12.5), ("layers", "12"), ("layers", True), ("hidden", None),
                                          ("causal", "yes"), ("activation", "relu"), ("name", "")])
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
