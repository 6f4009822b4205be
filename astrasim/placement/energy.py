"""Energy of one simulated run, per device and in total.

    device d:  active_power x busy_d + idle_power x (latency - busy_d) + radio_d
    radio_d:   radio_tx_w x tx_d + radio_rx_w x rx_d + radio_idle_w x (latency - tx_d - rx_d)

busy_d is the engine's compute time of device d (SimResult.compute_s); idle and active power are the
catalog's `idle_power_w` / `active_power_w` of the device's hardware (profiles/devices.yaml, each with
its source). The radio terms apply on the Wi-Fi kinds only (a wired port's power is left out): tx_d
and rx_d are the airtime d transmits and receives, each message charged what the engine charges it
on the medium (payload at the channel's capacity plus its per-message 802.11 overhead,
network/wifi_config.py WifiMedium.extra_bits; with a fixed `efficiency`, payload at rate x
efficiency; with a loss rate, the retransmissions too), per crossing: in infrastructure mode the sender
transmits to the access point and the AP transmits to each receiver (the receiver's rx), ad hoc the
sender transmits once and each receiver receives it. The radio powers are the network's
`network.wifi.radio_*_w` (defaults with their sources in wifi_config.py). The board's idle power is
taken without its radio (the radio's idle listening is the radio_idle_w term).

Columns (ENERGY_COLUMNS): energy_j (all devices, one request), energy_per_token_j (per generated
token when output_tokens > 0, else per prompt token), avg_power_w = energy_j / latency. Empty when a
device of the point has no power figures in the catalog.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from astrasim.compute.catalog import load_catalog
from astrasim.compute.hardware import hardware_of
from astrasim.compute.profiles import profile_id
from astrasim.errors import UserError
from astrasim.network.collectives import plan as collective_plan
from astrasim.network.collectives import resolve_algorithm
from astrasim.network.topology import DEFAULTS
from astrasim.network.wifi_config import parse_wifi, wifi_medium
from astrasim.opgraph import Comm
from astrasim.results import ENERGY_COLUMNS

POWER_FIELDS = ("idle_power_w", "active_power_w")


@dataclass(frozen=True)
class DeviceEnergy:
    """One device's share of a run's energy (J) and the times it comes from (s)."""

    name: str
    busy_s: float
    compute_j: float
    idle_j: float
    tx_s: float = 0.0
    rx_s: float = 0.0
    radio_j: float = 0.0

    @property
    def total_j(self) -> float:
        return self.compute_j + self.idle_j + self.radio_j


def device_power(name: str, catalog: dict | None = None) -> tuple[float, float]:
    """(idle W, active W) of a catalog device; UserError naming the missing field."""

    dev = (catalog or load_catalog()).get(name)
    if dev is None:
        raise UserError(
            f"'{name}' is not in the device catalog, so its power is unknown; add it to profiles/devices.yaml",
            field="hardware",
        )
    values = [getattr(dev, f, None) for f in POWER_FIELDS]
    for f, v in zip(POWER_FIELDS, values):
        if v is None:
            raise UserError(
                f"catalog device '{name}' has no {f}; add it (with its source) to profiles/devices.yaml",
                field=f"devices.{name}.{f}",
            )
    return float(values[0]), float(values[1])


def device_names(point) -> list[str]:
    """Catalog name of each device of a point (the measured profile's id where it has none)."""

    measured = profile_id(point.profile_path)
    return [hardware_of(point, d) or measured for d in range(point.devices)]


def airtime(point, graph) -> tuple[list[float], list[float]]:
    """(tx seconds, rx seconds) per device of the graph's messages on a Wi-Fi network (zeros otherwise)."""
    n = graph.n_devices
    tx, rx = [0.0] * n, [0.0] * n
    net = point.network
    if net.kind not in ("wifi", "wifi-adhoc") or n < 2:
        return tx, rx

    infrastructure = net.kind == "wifi"
    medium = None
    if net.efficiency is None:  # the 802.11 airtime model
        medium = wifi_medium(json.loads(net.wifi) if net.wifi else None, net.bandwidth_mbps, n, infrastructure)
        cap = medium.capacity_bps
    else:  # a fixed efficiency: payload at rate x efficiency, nothing per message
        cap = net.bandwidth_mbps * 1e6 * net.efficiency
    cap *= 1.0 - net.loss_rate  # lost frames are sent again

    default = DEFAULTS[net.kind]["default_algorithm"]
    for op in graph.ops:
        if not isinstance(op, Comm) or len(op.devices) < 2:
            continue
        algo = resolve_algorithm(op.collective, op.algorithm, default)
        root = op.devices.index(op.root) if op.root is not None and op.root in op.devices else 0
        plan = collective_plan(op.collective, len(op.devices), algo, root, net.broadcast)
        for src, dsts, frac, level in zip(plan.src, plan.dsts, plan.frac, plan.levels()):
            bits = op.bits * frac
            seconds = (bits + (medium.extra_bits(bits, *level) if medium is not None else 0.0)) / cap
            tx[op.devices[src]] += seconds
            for dst in dsts:  # infrastructure: the AP's relay to dst is dst's rx; ad hoc: the same airtime
                rx[op.devices[dst]] += seconds
    return tx, rx


def run_energy(point, result, graph, power=None) -> list[DeviceEnergy]:
    """Per-device energy of a SimResult of `point` built from `graph` (UserError: powers unknown).
    `power`: name -> (idle W, active W) (default: the catalog's, device_power)."""
    power = power or device_power
    names = device_names(point)
    latency = float(result.latency_s)
    tx, rx = airtime(point, graph)
    radio = None
    if point.network.kind in ("wifi", "wifi-adhoc") and graph.n_devices > 1:
        radio = parse_wifi(json.loads(point.network.wifi) if point.network.wifi else None)
    out = []
    for d, busy in enumerate(result.compute_s):
        idle_w, active_w = power(names[d])
        busy = min(float(busy), latency)
        radio_j = 0.0
        if radio is not None:
            t, r = min(tx[d], latency), min(rx[d], max(0.0, latency - tx[d]))
            radio_j = radio.radio_tx_w * t + radio.radio_rx_w * r + radio.radio_idle_w * max(0.0, latency - t - r)
        out.append(DeviceEnergy(names[d], busy, active_w * busy, idle_w * (latency - busy), tx[d], rx[d], radio_j))
    return out


def energy_columns(point, result, graph) -> dict:
    """ENERGY_COLUMNS of a run (see the module docstring); empty when a power figure is unknown."""
    try:
        devices = run_energy(point, result, graph)
    except UserError:
        return dict.fromkeys(ENERGY_COLUMNS)
    total = sum(d.total_j for d in devices)
    tokens = point.output_tokens if point.output_tokens > 0 else point.tokens
    latency = float(result.latency_s)
    return {
        "energy_j": total,
        "energy_per_token_j": total / tokens,
        "avg_power_w": total / latency if latency > 0 else None,
    }
