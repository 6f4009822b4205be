"""What the validation harness sends to its workers, without torch: the validation model and the
OpGraph as JSON (so that re-predicting stored measurements, `validation/reuse.py`, needs neither
root nor torch)."""

from __future__ import annotations

from dataclasses import asdict

from astrasim.models import ModelSpec
from astrasim.opgraph import Comm, Compute, OpGraph

# The validation model: a ViT-Base-wide encoder stack (no CLS, not causal) of 4 layers, whose
# passes are long enough (about 100 ms of compute for the shortest strategy at N = 2 on a 2-vCPU
# VM) that scheduler noise, time slices and per-message costs are small against them.
VALIDATION_MODEL = ModelSpec(
    name="val-base4",
    family="custom",
    layers=4,
    hidden=768,
    heads=12,
    kv_heads=12,
    mlp_hidden=3072,
    activation="gelu",
    norm="layernorm",
    causal=False,
    tokens=128,
    max_tokens=128,
)


def graph_to_json(graph: OpGraph) -> dict:
    return {"n_devices": graph.n_devices, "ops": [{"type": type(op).__name__, **asdict(op)} for op in graph.ops]}


def graph_from_json(data: dict) -> OpGraph:
    ops = []
    for raw in data["ops"]:
        raw = dict(raw)
        kind = raw.pop("type")
        raw["deps"] = tuple(raw["deps"])
        if kind == "Comm":
            raw["devices"] = tuple(raw["devices"])
            ops.append(Comm(**raw))
        else:
            ops.append(Compute(**raw))
    return OpGraph(int(data["n_devices"]), ops)
