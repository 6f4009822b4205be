"""Custom topologies (``network.custom``): a pydantic schema (unknown keys and wrong types refused)
and the checks that need the whole graph (self-loops, duplicate edges, unknown media, devices
missing or disconnected); then the networkx graph astrasim.network.topology documents."""

from __future__ import annotations

from typing import Annotated, Any, Literal

import networkx as nx
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from astrasim.errors import UserError
from astrasim.network.checks import (
    check_bandwidth,
    check_efficiency,
    check_latency,
    check_loss,
    check_node,
    check_trace,
    check_trace_ends_up,
)

Number = Annotated[float, Field(strict=True)]  # 1 and 1.5, not "1" nor true


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class CustomMedium(_Strict):
    """A shared half-duplex channel of a custom topology."""

    bandwidth_mbps: Number
    latency_s: Number = 0.0
    efficiency: Number = 1.0
    loss_rate: Number = 0.0
    bandwidth_trace: Any = None


class CustomEdge(_Strict):
    """One edge of a custom topology (a link, or a crossing of a medium)."""

    u: Any
    v: Any
    bandwidth_mbps: Number | None = None
    latency_s: Number | None = None
    duplex: Literal["full", "half"] = "full"
    efficiency: Number | None = None
    loss_rate: Number | None = None
    bandwidth_trace: Any = None
    medium: str | None = None


class CustomGraph(_Strict):
    """The schema of ``network.custom`` (topology_from_dict): unknown keys and wrong types refused."""

    nodes: list[Any] = []
    media: dict[str, CustomMedium] = {}
    edges: list[CustomEdge]
    broadcast: bool = False
    default_algorithm: Literal["ring", "direct", "star"] = "direct"
    name: str = "custom"


def _custom_error(exc: ValidationError, prefix: str) -> UserError:
    err = exc.errors()[0]
    loc = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in err["loc"])
    field = prefix + loc
    if err["type"] == "extra_forbidden":
        parent: type[BaseModel]
        if len(err["loc"]) >= 2 and err["loc"][0] == "edges":
            parent = CustomEdge
        elif len(err["loc"]) >= 2 and err["loc"][0] == "media":
            parent = CustomMedium
        else:
            parent = CustomGraph
        return UserError(f"unknown key; allowed: {', '.join(parent.model_fields)}", field)
    if err["type"] == "missing":
        return UserError("is required (see docs/network.md, custom topologies)", field)
    return UserError(f"{err['msg']}, got {err.get('input')!r}", field)


def custom_topology(data: dict, n_devices: int, prefix: str = "network.custom") -> nx.Graph:
    """Build a custom topology from a (YAML) dict, validated by CustomGraph (field names in errors
    start with ``prefix``)::

        nodes: [0, 1, 2, edge-server]         # optional; ints 0..n_devices-1 are the devices
        media:                                 # optional shared half-duplex channels (constant efficiency;
          hub: {bandwidth_mbps: 100, latency_s: 5.0e-5, efficiency: 0.94, loss_rate: 0.0,   # Wi-Fi: use
                bandwidth_trace: [[0, 100], [2.0, 50]]}    # topology wifi, its 802.11 airtime model)
        edges:
          - {u: 0, v: 1, bandwidth_mbps: 100, latency_s: 1e-4, duplex: full,   # duplex: full|half
             efficiency: 0.94, loss_rate: 0.0, bandwidth_trace: null}
          - {u: 2, v: edge-server, medium: hub}                  # a crossing of the medium
        broadcast: false                       # multicast flows (one airtime per transmitter)
        default_algorithm: direct              # what algorithm "auto" means (ring | direct | star)

    Edge defaults: latency_s 0 (on a medium: the medium's), duplex "full", efficiency 1,
    loss_rate 0, no trace. An edge on a medium takes its capacity from the medium; it may name
    its own bandwidth_mbps (that station's PHY rate), which scales its airtime per bit.
    Refused: unknown keys, wrong types, self-loops, duplicate edges, unknown media, bad values,
    devices missing from the graph or not connected to device 0.
    """
    if not isinstance(data, dict):
        raise UserError("a custom topology must be a mapping with 'edges'", prefix)
    if isinstance(n_devices, bool) or not isinstance(n_devices, int) or n_devices < 1:
        raise UserError(f"must be an integer >= 1, got {n_devices!r}", "n_devices")
    try:
        spec = CustomGraph.model_validate(data)
    except ValidationError as exc:
        raise _custom_error(exc, prefix) from None
    if not spec.edges:
        raise UserError("a custom topology needs a non-empty list of edges", f"{prefix}.edges")
    g = nx.Graph(
        kind="custom",
        name=spec.name,
        n_devices=n_devices,
        broadcast=spec.broadcast,
        default_algorithm=spec.default_algorithm,
        media={},
    )
    for k, node in enumerate(spec.nodes):
        g.add_node(check_node(node, f"{prefix}.nodes[{k}]"))
    for name, m in spec.media.items():
        f = f"{prefix}.media.{name}"
        g.graph["media"][name] = {
            "bandwidth_mbps": check_bandwidth(m.bandwidth_mbps, f"{f}.bandwidth_mbps"),
            "latency_s": check_latency(m.latency_s, f"{f}.latency_s"),
            "efficiency": check_efficiency(m.efficiency, f"{f}.efficiency"),
            "loss_rate": check_loss(m.loss_rate, f"{f}.loss_rate"),
            "bandwidth_trace": check_trace_ends_up(
                check_trace(m.bandwidth_trace, f"{f}.bandwidth_trace"), f"{f}.bandwidth_trace"
            ),
        }
    for k, e in enumerate(spec.edges):
        f = f"{prefix}.edges[{k}]"
        u, v = check_node(e.u, f"{f}.u"), check_node(e.v, f"{f}.v")
        if u == v:
            raise UserError(f"a self-loop {u!r}-{v!r}; an edge needs two different nodes", f)
        if e.medium is not None:
            if e.medium not in g.graph["media"]:
                raise UserError(f"unknown medium {e.medium!r}; declare it under media", f"{f}.medium")
            m = g.graph["media"][e.medium]
            bw = e.bandwidth_mbps
            attrs: dict[str, Any] = {
                "bandwidth_mbps": None if bw is None else check_bandwidth(bw, f"{f}.bandwidth_mbps"),
                "latency_s": check_latency(m["latency_s"] if e.latency_s is None else e.latency_s, f"{f}.latency_s"),
                "efficiency": None,
                "loss_rate": None,
                "bandwidth_trace": None,
                "duplex": "half",
                "medium": e.medium,
            }
            for key in ("efficiency", "loss_rate", "bandwidth_trace"):
                if getattr(e, key) is not None:
                    raise UserError(f"an edge on a medium takes {key} from the medium", f"{f}.{key}")
        else:
            if e.bandwidth_mbps is None:
                raise UserError("needs bandwidth_mbps (or a medium)", f"{f}.bandwidth_mbps")
            attrs = {
                "bandwidth_mbps": check_bandwidth(e.bandwidth_mbps, f"{f}.bandwidth_mbps"),
                "latency_s": check_latency(e.latency_s or 0.0, f"{f}.latency_s"),
                "efficiency": check_efficiency(1.0 if e.efficiency is None else e.efficiency, f"{f}.efficiency"),
                "loss_rate": check_loss(e.loss_rate or 0.0, f"{f}.loss_rate"),
                "bandwidth_trace": check_trace_ends_up(
                    check_trace(e.bandwidth_trace, f"{f}.bandwidth_trace"), f"{f}.bandwidth_trace"
                ),
                "duplex": e.duplex,
                "medium": None,
            }
        if g.has_edge(u, v):
            raise UserError(f"duplicate edge {u!r}-{v!r}; list each pair once", f)
        g.add_edge(u, v, **attrs)
    for node in g.nodes:
        g.nodes[node]["device"] = isinstance(node, int) and 0 <= node < n_devices
    missing = [d for d in range(n_devices) if d not in g]
    if missing:
        raise UserError(
            f"devices {missing} are not nodes of the custom topology ({n_devices} devices need "
            f"nodes 0..{n_devices - 1}); add edges to them or use fewer devices",
            f"{prefix}.edges",
        )
    for d in range(1, n_devices):
        if not nx.has_path(g, 0, d):
            raise UserError(
                f"device {d} is not connected to device 0; add an edge on a path between them", f"{prefix}.edges"
            )
    return g
