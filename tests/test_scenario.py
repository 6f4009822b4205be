"""Scenario schema: defaults and descriptions, grid expansion, load-time errors naming the field."""

import math
from pathlib import Path

import pytest
import yaml

from astrasim.errors import UserError
from astrasim.models import get_model
from astrasim.scenario import Scenario, apply_overrides, describe, from_dict, load_scenario, point_key
from astrasim.strategies import STRATEGIES
from astrasim.strategies.synthetic import synthetic_profile
from astrasim.sweep import build_point_graph

ROOT = Path(__file__).resolve().parents[1]
SHIPPED = pytest.mark.skipif(
    not (ROOT / "profiles" / "cpu.csv").exists(),
    reason="profiles/cpu.csv (the shipped CPU profile) is not in this checkout yet",
)


@pytest.fixture()
def profile(tmp_path, monkeypatch):
    """A synthetic profile installed as id 'cpu' (ASTRASIM_PROFILES) and returned as a path."""
    d = tmp_path / "profiles"
    d.mkdir()
    specs = [get_model(m) for m in ("vit-base", "gpt2-s", "gpt2-m")]
    synthetic_profile(specs, devices=(2, 4, 8), tokens=None).to_csv(d / "cpu.csv", index=False)
    monkeypatch.setenv("ASTRASIM_PROFILES", str(d))
    return d / "cpu.csv"


def write(tmp_path, data, name="s.yaml"):
    p = tmp_path / name
    p.write_text(yaml.safe_dump(data) if not isinstance(data, str) else data)
    return p


def test_every_field_has_a_default_and_a_description():
    Scenario()  # constructible with no input at all
    rows = describe()
    assert len(rows) >= 20
    for name, _default, desc in rows:
        assert desc, f"{name} has no description"
    names = {r[0] for r in rows}
    assert {"network.bandwidth_mbps", "strategies[].groups", "hardware.speeds", "element_bits", "causal_skip"} <= names


def test_wifi_scenario_is_the_main_job_grid(profile):
    sc = load_scenario(ROOT / "scenarios" / "wifi.yaml")
    pts = sc.points()
    # 2 models x (6 bandwidths x single + 3 N x 6 bandwidths x 11 multi-device variants)
    assert len(pts) == 2 * (6 + 3 * 6 * 11)
    assert {p.model.name for p in pts} == {"vit-base", "gpt2-s"}
    assert sorted({p.network.bandwidth_mbps for p in pts}) == [10, 20, 50, 100, 200, 500]
    assert {(p.strategy, p.identity()["groups"], p.identity()["nb"]) for p in pts} == {
        ("single", 0, 0),
        ("tp", 0, 0),
        ("sp", 0, 0),
        ("bp-ag", 0, 1),
        ("bp-ag", 0, 4),
        ("bp-sp", 0, 1),
        ("bp-sp", 0, 4),
        ("astra", 1, 0),
        ("astra", 16, 0),
        ("astra", 32, 0),
        ("pp", 0, 0),
    }
    assert {p.knobs.chunks for p in pts if p.strategy == "pp"} == {1, 4}
    assert {p.devices for p in pts if p.strategy == "single"} == {1}
    assert {p.devices for p in pts if p.strategy != "single"} == {2, 4, 8}
    assert {p.network.kind for p in pts} == {"wifi"} and {p.hardware for p in pts} == {"cpu"}
    assert len({point_key(p) for p in pts}) == len(pts)


@SHIPPED
@pytest.mark.parametrize("name", ["wifi", "ethernet", "paper", "heterogeneous", "dynamic"])
def test_shipped_scenarios_load_on_the_shipped_profile(name):
    sc = load_scenario(ROOT / "scenarios" / f"{name}.yaml")
    assert sc.name == name and sc.description
    for p in sc.points():  # the shipped profile has a row for every op of every point
        build_point_graph(p)


def test_grid_is_the_cartesian_product(profile, tmp_path):
    p = write(
        tmp_path,
        {
            "models": ["gpt2-s"],
            "devices": [2, 4],
            "tokens": [512, 1024],
            "strategies": ["tp", {"name": "astra", "groups": [1, 32], "codebook": [256, 1024]}],
            "element_bits": [16, 32],
            "network": {"topology": ["wifi", "switch"], "bandwidth_mbps": [10, 100, 1000], "loss_rate": [0, 0.01]},
        },
    )
    pts = load_scenario(p).points()
    assert len(pts) == 2 * 2 * (1 + 4) * 2 * 2 * 3 * 2
    assert len({point_key(x) for x in pts}) == len(pts)


def test_defaults_fill_a_minimal_scenario(profile, tmp_path):
    sc = load_scenario(write(tmp_path, {}, "minimal.yaml"))
    assert sc.name == "minimal"
    pts = sc.points()
    assert {p.model.name for p in pts} == {"gpt2-s"} and {p.tokens for p in pts} == {1024}
    # every registered strategy that applies to a dense model (ep needs experts)
    assert (
        {p.strategy for p in pts}
        == {s for s in STRATEGIES if STRATEGIES[s].applies(pts[0].model)}
        == set(STRATEGIES) - {"ep"}
    )
    assert {
        (p.network.kind, p.network.bandwidth_mbps, p.element_bits, p.knobs.codebook)
        for p in pts
        if p.strategy == "astra"
    } == {("wifi", 100.0, 32, 1024)}


def test_overrides_set_nested_fields(profile, tmp_path):
    path = write(tmp_path, {"devices": [2, 4], "network": {"bandwidth_mbps": [10, 20]}})
    sc = load_scenario(
        path, ["devices=8", "network.bandwidth_mbps=50", "strategies=[astra]", "network.topology=switch"]
    )
    assert {(p.devices, p.network.bandwidth_mbps, p.network.kind) for p in sc.points()} == {(8, 50.0, "switch")}
    assert apply_overrides({"a": {"b": 1}}, ["a.c=[1, 2]"]) == {"a": {"b": 1, "c": [1, 2]}}
    with pytest.raises(UserError, match="--set"):
        apply_overrides({}, ["novalue"])


def test_custom_inline_model_and_model_file(profile, tmp_path):
    (tmp_path / "tiny.yaml").write_text("name: tiny\nlayers: 2\nhidden: 64\nheads: 4\nmlp_hidden: 128\ntokens: 32\n")
    sc = load_scenario(
        write(
            tmp_path,
            {
                "models": [
                    {"name": "inline", "layers": 4, "hidden": 128, "heads": 4, "mlp_hidden": 256, "tokens": 64},
                    "tiny.yaml",
                ],
                "strategies": [{"name": "astra", "groups": 4}],
                "devices": 2,
            },
        )
    )
    assert [s.name for s in sc.specs] == ["inline", "tiny"]


def test_heterogeneous_speeds_and_single_uses_the_fastest(profile, tmp_path):
    sc = load_scenario(
        write(
            tmp_path,
            {
                "devices": [2, 4],
                "strategies": ["single", "sp"],
                "hardware": {"speeds": [1.0, 2.0, 0.5, 0.5], "speed": 2.0},
            },
        )
    )
    by = {(p.strategy, p.devices): p for p in sc.points()}
    assert by[("sp", 2)].device_speeds() == [2.0, 4.0]
    assert by[("sp", 4)].device_speeds() == [2.0, 4.0, 1.0, 1.0]
    assert by[("single", 1)].device_speeds() == [4.0]


def test_catalog_device_sets_the_hardware_column(profile, tmp_path):
    sc = load_scenario(write(tmp_path, {"strategies": ["single"], "hardware": {"device": [None, "raspberry-pi-5"]}}))
    assert [p.hardware for p in sc.points()] == ["cpu", "raspberry-pi-5"]


BAD = [
    ("models: [gpt2-s\n", "scenario", "malformed YAML"),
    ({"colour": "red"}, "colour", "allowed here"),
    ({"network": {"bandwith_mbps": 10}}, "network.bandwith_mbps", "bandwidth_mbps"),
    ({"strategies": [{"name": "astra", "group": 4}]}, "strategies[0].group", "groups"),
    ({"strategies": ["pipeline"]}, "strategies[0].name", "use one of " + ", ".join(STRATEGIES)),
    ({"models": ["gpt3"]}, "models[0]", "gpt2-s"),
    ({"strategies": [{"name": "astra", "groups": 7}]}, "strategies[0].groups", "does not divide"),
    ({"strategies": [{"name": "bp-ag", "nb": 5}]}, "strategies[0].nb", "does not divide"),
    ({"models": "vit-base", "devices": 200}, "devices", "larger than the 196 tokens"),
    ({"tokens": 4, "devices": 8}, "devices", "use at most 4 devices"),
    ({"tokens": 4096}, "tokens", "outside 1..1024"),
    ({"network": {"bandwidth_mbps": [10, 0]}}, "network.bandwidth_mbps[1]", "positive"),
    ({"network": {"bandwidth_mbps": -5}}, "network.bandwidth_mbps[0]", "positive"),
    ({"network": {"bandwidth_mbps": float("nan")}}, "network.bandwidth_mbps[0]", "positive"),
    ({"network": {"latency_s": -1}}, "network.latency_s[0]", "[0, inf)"),
    ({"strategies": [{"name": "single", "groups": 4}]}, "strategies[0].groups", "its knobs: none"),
    ({"network": {"bandwidth_mbps": "fast"}}, "network.bandwidth_mbps[0]", "number"),
    ({"network": {"efficiency": 1.5}}, "network.efficiency[0]", "(0, 1]"),
    ({"network": {"loss_rate": 1.0}}, "network.loss_rate[0]", "[0, 1)"),
    ({"network": {"topology": "token-ring"}}, "network.topology[0]", "wifi"),
    ({"network": {"trace": "nope.csv"}}, "network.trace", "not found"),
    ({"hardware": {"profile": "h100"}}, "hardware.profile", "astrasim profile"),
    ({"hardware": {"profile": "missing.csv"}}, "hardware.profile", "not found"),
    ({"hardware": {"device": "cray-1"}}, "hardware.device", "jetson-orin-nano"),
    ({"hardware": {"speeds": [1, 1]}, "devices": 4}, "hardware.speeds", "largest device count is 4"),
    ({"element_bits": 12}, "element_bits[0]", "8, 16, 32"),
    ({"algorithm": "tree"}, "algorithm", "ring"),
    ("- just\n- a list\n", "scenario", "mapping"),
]


@pytest.mark.parametrize("data, field, fix", BAD)
def test_bad_scenarios_name_the_field_and_the_fix(profile, tmp_path, data, field, fix):
    with pytest.raises(UserError) as exc:
        load_scenario(write(tmp_path, data))
    msg = str(exc.value)
    assert msg.startswith(field + ":"), msg
    assert fix in msg
    assert "\n" not in msg


def test_missing_scenario_file(tmp_path):
    with pytest.raises(UserError, match="scenario: .*not found"):
        load_scenario(tmp_path / "nope.yaml")


def test_from_dict_accepts_parsed_mappings(profile):
    sc = from_dict({"devices": 2, "strategies": ["tp"], "network": {"bandwidth_mbps": 1e3}}, name="x")
    (p,) = [p for p in sc.points()]
    assert (p.scenario, p.devices, p.network.bandwidth_mbps, math.isclose(p.speed, 1.0)) == ("x", 2, 1000.0, True)


def test_docs_list_every_field():
    text = (ROOT / "docs" / "scenarios.md").read_text()
    for name, default, desc in describe():
        assert f"| `{name}` | `{default}` | {desc} |" in text, name


def test_star_algorithm_reaches_the_graphs_collectives(profile):
    from astrasim.opgraph import Comm

    sc = from_dict({"devices": 4, "strategies": ["tp"], "algorithm": "star"}, name="x")
    (p,) = [p for p in sc.points()]
    comms = [op for op in build_point_graph(p).ops if isinstance(op, Comm)]
    assert comms and all(c.algorithm == "star" for c in comms)


def test_more_devices_than_prompt_tokens_only_for_strategies_that_keep_every_token(profile):
    """tp (heads split) decodes a one-token prompt on 4 devices (distributed-llama's benchmark);
    sp, which splits the tokens, is refused and the message names it."""
    sc = from_dict(
        {
            "models": ["llama3-8b"],
            "devices": 4,
            "tokens": 1,
            "strategies": ["tp"],
            "hardware": {"device": "raspberry-pi-5"},
        },
        name="x",
    )
    assert [p.devices for p in sc.points()] == [4]
    with pytest.raises(UserError, match="devices: N=4 devices is larger than the 1 tokens of llama3-8b that sp split"):
        from_dict(
            {
                "models": ["llama3-8b"],
                "devices": 4,
                "tokens": 1,
                "strategies": ["tp", "sp"],
                "hardware": {"device": "raspberry-pi-5"},
            },
            name="x",
        )


def test_scenario_level_causal_skip_sets_the_knob_of_the_strategies_that_have_it():
    """`causal_skip` at the top is an alias of astra's knob: it sets every entry that leaves the knob
    out, an entry's own value wins, and strategies without the knob are untouched."""

    def skips(data):
        return sorted((p.strategy, getattr(p.knobs, "causal_skip", None)) for p in from_dict(data).points())

    base = {"models": ["gpt2-s"], "devices": [4], "hardware": {"profile": "cpu"}}
    two = [{"name": "astra", "groups": 32}, {"name": "astra", "groups": 16, "causal_skip": True}, "sp"]
    assert skips({**base, "strategies": two, "causal_skip": False}) == [("astra", False), ("astra", True), ("sp", None)]
    assert skips({**base, "strategies": two}) == [("astra", True), ("astra", True), ("sp", None)]
    g = build_point_graph(next(p for p in from_dict({**base, "strategies": ["astra"], "causal_skip": False}).points()))
    assert {op.collective for op in g.ops if hasattr(op, "collective")} == {"all_gather"}
