"""One prediction of a generation request, for checks against published end-to-end measurements
(validation/published): a normal scenario built from the arguments and simulated by the one point
path (astrasim.pointrun.simulate_point), so the check exercises exactly what users run."""

from __future__ import annotations

from typing import Any

from astrasim.pointrun import simulate_point
from astrasim.scenario.grid import iter_points
from astrasim.scenario.loading import from_dict


def scenario_dict(
    device: str,
    devices: int,
    model: str,
    weight_format: str,
    prompt_tokens: int,
    generated_tokens: int,
    *,
    link_mbps: float = 1000.0,
    topology: str = "switch",
    strategy: str | dict = "tp",
    algorithm: str = "auto",
    **hardware: Any,
) -> dict:
    """The scenario of one request on `devices` x `device` (strategy `single` on one device)."""
    return {
        "name": "predict",
        "models": [model],
        "tokens": int(prompt_tokens),
        "output_tokens": int(generated_tokens),
        "devices": [int(devices)],
        "strategies": ["single" if devices == 1 else strategy],
        "weight_format": [weight_format],
        "algorithm": algorithm,
        "hardware": {"device": device, **hardware},
        "network": {"topology": topology, "bandwidth_mbps": float(link_mbps)},
    }


def predict(
    device: str, devices: int, model: str, weight_format: str, prompt_tokens: int, generated_tokens: int, **kwargs: Any
) -> dict[str, Any]:
    """The result row of one request (scenario_dict's arguments), plus prefill_tokens_per_s
    (prompt tokens / ttft) and ms_per_token (tpot in ms). Bad arguments: UserError."""
    sc = from_dict(scenario_dict(device, devices, model, weight_format, prompt_tokens, generated_tokens, **kwargs))
    row = simulate_point(next(iter_points(sc)))
    ttft, tpot = row.get("ttft_s"), row.get("tpot_s")
    row["prefill_tokens_per_s"] = prompt_tokens / ttft if ttft else None
    row["ms_per_token"] = tpot * 1e3 if tpot is not None else None
    return row
