"""Topologies as networkx graphs, and their compilation into flow resources and routes.

A topology is a ``networkx.Graph``. Device nodes are the ints ``0..n-1``; other nodes
("switch", "ap", anything in a custom graph) only forward. Attributes:

* ``G.graph``: ``kind``, ``n_devices``, ``broadcast`` (multicast flows on), ``default_algorithm``
  ("ring", "direct" or "star": what ``algorithm="auto"`` means for all-gather / all-reduce /
  reduce-scatter) and ``media``: ``{name: {bandwidth_mbps, latency_s, efficiency, loss_rate,
  bandwidth_trace, airtime}}`` for shared half-duplex channels (Wi-Fi); ``airtime`` is a
  ``WifiMedium`` (wifi_config.py) on the wifi presets: the efficiency comes from the 802.11
  airtime model and every message pays its per-frame airtime on the medium (None: the
  constant ``efficiency`` and nothing per message).
* every edge: ``bandwidth_mbps``, ``latency_s``, ``efficiency``, ``loss_rate``, ``duplex``
  ("full": one independent capacity per direction; "half": both directions share one),
  ``bandwidth_trace`` (or None) and ``medium`` (a media name, or None). An edge on a medium
  has no capacity of its own: every crossing of it consumes the medium's airtime, weighted by
  ``medium bandwidth / edge bandwidth`` when the edge names its own (slower) PHY rate.

Goodput of a link or medium: ``bandwidth_mbps * 1e6 * efficiency * (1 - loss_rate)`` bit/s
(``1 / (1 - p)`` expected transmissions per packet when each is lost with probability p).
A bandwidth trace ``[(t0, b0), (t1, b1), ...]`` replaces ``bandwidth_mbps`` by ``b_k`` from
``t_k`` (simulated seconds) until ``t_{k+1}``; the last value holds forever; before ``t0``
the nominal bandwidth applies. A message pays, once, the sum of ``latency_s`` over the hops
of its route (its alpha), then its bits flow at the max-min fair rate (see flows.py).
Routes are networkx shortest paths in hops (ties: networkx's deterministic BFS order).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, NamedTuple

import networkx as nx

from astrasim.errors import UserError
from astrasim.network.checks import (  # noqa: F401 (Trace, check_trace, load_bandwidth_trace: re-exported)
    Trace,
    check_bandwidth,
    check_efficiency,
    check_latency,
    check_loss,
    check_trace,
    load_bandwidth_trace,
)
from astrasim.network.custom import custom_topology
from astrasim.network.wifi_config import parse_wifi, wifi_medium

KINDS = ("mesh", "switch", "wifi", "wifi-adhoc", "ideal")

# Per-kind defaults (docs/network.md explains each). latency_s is the alpha of one
# device-to-device message, except on "wifi" where it is per crossing of the air (a
# station-to-station message crosses twice, through the access point). On the wifi kinds
# efficiency None means the 802.11 airtime model (wifi80211.py), whose per-message airtime
# replaces a fixed latency; a number given instead is a constant efficiency (no airtime model).
DEFAULTS: dict[str, dict[str, Any]] = {
    "mesh": {"latency_s": 50e-6, "efficiency": 0.94, "default_algorithm": "direct"},
    "switch": {"latency_s": 100e-6, "efficiency": 0.94, "default_algorithm": "ring"},
    "wifi": {"latency_s": 0.0, "efficiency": None, "default_algorithm": "direct"},
    "wifi-adhoc": {"latency_s": 0.0, "efficiency": None, "default_algorithm": "direct"},
    "ideal": {"latency_s": 0.0, "efficiency": 1.0, "default_algorithm": "direct"},
}
SWITCH = "switch"
ACCESS_POINT = "ap"
MEDIUM = "wifi"


# ----------------------------------------------------------------------------- builders
def build_topology(
    kind: str,
    n_devices: int,
    bandwidth_mbps: float | None,
    *,
    latency_s: float | None = None,
    efficiency: float | None = None,
    loss_rate: float = 0.0,
    bandwidth_trace: list[tuple[float, float]] | None = None,
    broadcast: bool = False,
    wifi: Any = None,
) -> nx.Graph:
    """Build a preset topology (see module docstring and docs/network.md for what each assumes).

    ``None`` means the per-kind default in ``DEFAULTS``. The bandwidth, efficiency, loss and
    trace apply to every link (mesh, ideal, switch ports) or to the one shared channel (wifi).
    ``wifi`` (a WifiConfig or its mapping; wifi kinds only) sets the 802.11 standard, width, MCS
    and streams of the airtime model; with an MCS, ``bandwidth_mbps`` may be None (the MCS's rate).
    """
    if kind not in KINDS:
        raise UserError(f"unknown network kind {kind!r}; choose one of {', '.join(KINDS)}", "kind")
    if isinstance(n_devices, bool) or not isinstance(n_devices, int) or n_devices < 1:
        raise UserError(f"must be an integer >= 1, got {n_devices!r}", "n_devices")
    d = DEFAULTS[kind]
    airtime = None
    if kind in ("wifi", "wifi-adhoc") and efficiency is None:
        if bandwidth_mbps is not None:
            check_bandwidth(bandwidth_mbps, "bandwidth_mbps")
        airtime = wifi_medium(wifi, bandwidth_mbps, n_devices, infrastructure=kind == "wifi")
        bandwidth_mbps, efficiency = airtime.phy.rate_bps / 1e6, airtime.efficiency
    elif wifi is not None:
        raise UserError("Wi-Fi settings apply to the wifi kinds without a fixed efficiency", "network.wifi")
    bw = check_bandwidth(bandwidth_mbps, "bandwidth_mbps")
    lat = check_latency(d["latency_s"] if latency_s is None else latency_s, "latency_s")
    eff = check_efficiency(d["efficiency"] if efficiency is None else efficiency, "efficiency")
    loss = check_loss(loss_rate, "loss_rate")
    trace = check_trace(bandwidth_trace)
    link = {"bandwidth_mbps": bw, "efficiency": eff, "loss_rate": loss, "bandwidth_trace": trace, "medium": None}

    g = nx.Graph(
        kind=kind, n_devices=n_devices, broadcast=bool(broadcast), default_algorithm=d["default_algorithm"], media={}
    )
    g.add_nodes_from(range(n_devices), device=True)
    if kind in ("mesh", "ideal"):
        for u in range(n_devices):
            for v in range(u + 1, n_devices):
                g.add_edge(u, v, latency_s=lat, duplex="full", **link)
    elif kind == "switch":
        g.add_node(SWITCH, device=False)
        for u in range(n_devices):  # two port links per message: split alpha so a message pays lat
            g.add_edge(u, SWITCH, latency_s=lat / 2, duplex="full", **link)
    else:
        g.graph["media"][MEDIUM] = {
            "bandwidth_mbps": bw,
            "latency_s": lat,
            "efficiency": eff,
            "loss_rate": loss,
            "bandwidth_trace": trace,
            "airtime": airtime,
        }
        if airtime is not None and trace:  # the airtime model at each row's PHY rate
            g.graph["media"][MEDIUM]["airtime_trace"] = _airtime_trace(wifi, trace, n_devices, kind)
        air = {
            "bandwidth_mbps": None,
            "latency_s": lat,
            "efficiency": None,
            "loss_rate": None,
            "bandwidth_trace": None,
            "duplex": "half",
            "medium": MEDIUM,
        }
        if kind == "wifi":
            g.add_node(ACCESS_POINT, device=False)
            for u in range(n_devices):
                g.add_edge(u, ACCESS_POINT, **air)
        else:
            for u in range(n_devices):
                for v in range(u + 1, n_devices):
                    g.add_edge(u, v, **air)
    return g


def _airtime_trace(wifi: Any, trace: Trace | None, n_devices: int, kind: str) -> tuple | None:
    """The Wi-Fi medium at each trace row's PHY rate (None at 0 Mbps): a trace of the PHY rate
    changes the channel's efficiency and every message's airtime with it, not only its capacity
    (one row at b Mbps from 0 s is then exactly the static network at b Mbps). An MCS in the
    settings gives way to the trace's rates (rate adaptation)."""
    if not trace:
        return None
    cfg = parse_wifi(wifi)
    if cfg.mcs is not None:
        cfg = cfg.model_copy(update={"mcs": None})
    return tuple(None if b <= 0 else wifi_medium(cfg, b, n_devices, infrastructure=kind == "wifi") for _, b in trace)


def topology_from_dict(data: dict, n_devices: int, prefix: str = "network.custom") -> nx.Graph:
    """A custom topology from a (YAML) dict, validated first (astrasim.network.custom)."""
    return custom_topology(data, n_devices, prefix)


# ----------------------------------------------------------------------------- compilation
@dataclass(frozen=True, slots=True)
class Resource:
    """One capacity constraint: a link direction, a half-duplex link, or a shared medium."""

    name: str
    capacity_bps: float  # goodput at the nominal bandwidth
    trace: tuple[tuple[float, float], ...] | None = None  # (time_s, goodput bit/s), piecewise constant
    # extra seconds of this resource (at capacity_bps) each crossing of a message of `payload_bits`
    # occupies, e.g. per-frame airtime on a medium (network/flows.py); None: none
    overhead_s: Callable[..., float] | None = None  # (payload_bits, level=None) -> seconds
    # per trace row, the overhead at that row's rate (a Wi-Fi PHY rate that changes: the airtime
    # model at each rate, network/wifi_config.py); None: overhead_s at every row
    trace_overhead_s: tuple[Callable[..., float] | None, ...] | None = None


def _goodput(bw_mbps: float, eff: float, loss: float) -> float:
    return bw_mbps * 1e6 * eff * (1.0 - loss)


def _per_message(extra_bits: Callable[..., float], capacity: float) -> Callable[..., float]:
    """Seconds a message occupies a medium beyond its payload: its extra airtime bits at the
    medium's loss-free capacity (the one extra_bits is counted at)."""
    return lambda bits, level=None: extra_bits(bits, *(level or (1, 1))) / capacity


class Route(NamedTuple):
    """How one message (unicast or multicast) loads the network."""

    usage: tuple[tuple[int, float, int], ...]  # (resource index, airtime coefficient, crossings)
    alpha: float  # per-message latency paid once


class Fabric:
    """A topology compiled for simulation: resources (capacities, traces) and cached routes."""

    def __init__(self, graph: nx.Graph):
        self.graph = graph
        self.broadcast = bool(graph.graph.get("broadcast", False))
        self.default_algorithm = graph.graph.get("default_algorithm", "direct")
        self.resources: list[Resource] = []
        self._rid: dict[Any, int] = {}
        media = graph.graph.get("media", {})
        for name, m in media.items():
            airtime = m.get("airtime")
            self._add(
                ("medium", name),
                str(name),
                m["bandwidth_mbps"],
                m["efficiency"],
                m["loss_rate"],
                m.get("bandwidth_trace"),
                None if airtime is None else airtime.extra_bits,
                m.get("airtime_trace"),
            )
        # directed hop (u, v) -> (resource, airtime coefficient, latency, dedup key for multicast)
        self._hop: dict[tuple[Any, Any], tuple[int, float, float, Any]] = {}
        for u, v, a in graph.edges(data=True):
            medium = a.get("medium")
            if medium is not None:
                m = media[medium]
                rid = self._rid[("medium", medium)]
                coef = 1.0 if a.get("bandwidth_mbps") is None else m["bandwidth_mbps"] / a["bandwidth_mbps"]
                lat = m["latency_s"] if a.get("latency_s") is None else a["latency_s"]
                # a transmitter reaches every receiver on the medium with one airtime
                self._hop[(u, v)] = (rid, coef, lat, (rid, u))
                self._hop[(v, u)] = (rid, coef, lat, (rid, v))
                continue
            bw, eff, loss = a["bandwidth_mbps"], a.get("efficiency", 1.0), a.get("loss_rate", 0.0)
            tr, lat = a.get("bandwidth_trace"), a.get("latency_s", 0.0)
            if a.get("duplex", "full") == "half":
                rid = self._add(("half", u, v), f"{u}<->{v}", bw, eff, loss, tr)
                self._hop[(u, v)] = (rid, 1.0, lat, (u, v))
                self._hop[(v, u)] = (rid, 1.0, lat, (v, u))
            else:
                self._hop[(u, v)] = (self._add(("dir", u, v), f"{u}->{v}", bw, eff, loss, tr), 1.0, lat, (u, v))
                self._hop[(v, u)] = (self._add(("dir", v, u), f"{v}->{u}", bw, eff, loss, tr), 1.0, lat, (v, u))
        self._paths: dict[Any, dict[Any, list]] = {}
        self._routes: dict[tuple[Any, tuple], Route] = {}

    def _add(
        self,
        key: Any,
        name: str,
        bw: float,
        eff: float,
        loss: float,
        trace: Trace | None,
        extra_bits: Callable[..., float] | None = None,
        airtime_trace: tuple | None = None,
    ) -> int:
        """extra_bits(payload_bits, level): a medium's per-message airtime in bits at its capacity
        (Wi-Fi, network/wifi_config.py), charged through the engine's overhead_s hook per message;
        level = (senders, share) of the message's collective step (Plan.levels) or None (a lone
        message). airtime_trace: the medium (a WifiMedium, None at 0 Mbps) at each trace row's
        PHY rate: each row's goodput and per-message airtime are then that rate's, exactly as
        a static network at that rate."""
        rid = len(self.resources)
        tr = None if not trace else tuple((t, _goodput(b, eff, loss)) for t, b in trace)
        per_row = None
        if trace and airtime_trace is not None:  # (tr is set exactly when trace is non-empty)
            tr = tuple(
                (t, 0.0 if m is None else _goodput(b, m.efficiency, loss)) for (t, b), m in zip(trace, airtime_trace)
            )
            per_row = tuple(
                None if m is None else _per_message(m.extra_bits, _goodput(b, m.efficiency, 0.0))
                for (_, b), m in zip(trace, airtime_trace)
            )
        overhead_s = None if extra_bits is None else _per_message(extra_bits, _goodput(bw, eff, 0.0))
        self.resources.append(Resource(name, _goodput(bw, eff, loss), tr, overhead_s, per_row))
        self._rid[key] = rid
        return rid

    def path(self, src: Any, dst: Any) -> list:
        paths = self._paths.get(src)
        if paths is None:
            paths = self._paths[src] = nx.single_source_shortest_path(self.graph, src)
        try:
            return paths[dst]
        except KeyError:
            raise ValueError(f"no route from {src!r} to {dst!r} in the topology") from None

    def route(self, src: Any, dsts: tuple) -> Route:
        """The route of a message from src to dsts (several dsts = one multicast flow, which
        needs ``broadcast``: each wired hop of the union of paths once, each transmitter on a
        medium one airtime, alpha = the largest path latency)."""
        key = (src, dsts)
        r = self._routes.get(key)
        if r is not None:
            return r
        coef: dict[int, float] = {}
        cross: dict[int, int] = {}
        alpha = 0.0
        hops: dict[Any, tuple[int, float]] = {}  # dedup key -> (resource, coefficient)
        for d in dsts:
            p = self.path(src, d)
            lat = 0.0
            for u, v in zip(p, p[1:]):
                rid, c, hop_lat, dedup = self._hop[(u, v)]
                lat += hop_lat
                if len(dsts) == 1:
                    coef[rid] = coef.get(rid, 0.0) + c
                    cross[rid] = cross.get(rid, 0) + 1
                elif dedup not in hops or hops[dedup][1] < c:  # broadcast at the slowest receiver's rate
                    hops[dedup] = (rid, c)
            alpha = max(alpha, lat)
        for rid, c in hops.values():
            coef[rid] = coef.get(rid, 0.0) + c
            cross[rid] = cross.get(rid, 0) + 1
        r = self._routes[key] = Route(tuple(sorted((rid, coef[rid], cross[rid]) for rid in coef)), alpha)
        return r
