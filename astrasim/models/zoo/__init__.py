"""The shipped zoo: published Hugging Face `config.json` files of models people run on edge boards,
addressable by short names (`llama3.2-1b`, ..., `mixtral-8x7b`). Each folder holds the config and
a SOURCE.md with where it comes from and its licence. `published` is the parameter count its
publisher states (and `published_active` for MoE models), with `cited` saying where; the test
suite checks the count astrasim computes from the spec against it.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path

from astrasim.models.hf import read_config, spec_from_config
from astrasim.models.spec import ModelSpec

ZOO_DIR = Path(__file__).resolve().parent


@dataclass(frozen=True)
class ZooEntry:
    repo: str  # the publisher's Hugging Face repository
    licence: str
    published: float  # parameters the publisher states
    cited: str  # where that count is stated
    published_active: float = 0.0  # MoE: parameters one token uses


_HF = "Hugging Face model page of {} (safetensors parameter count)"
ZOO: dict[str, ZooEntry] = {
    "llama3.2-1b": ZooEntry(
        "meta-llama/Llama-3.2-1B", "Llama 3.2 Community License", 1.24e9, _HF.format("meta-llama/Llama-3.2-1B")
    ),
    "llama3.2-3b": ZooEntry(
        "meta-llama/Llama-3.2-3B",
        "Llama 3.2 Community License",
        3.21e9,
        "model card of meta-llama/Llama-3.2-3B, 'Params: 3B (3.21B)'",
    ),
    "llama2-7b": ZooEntry(
        "meta-llama/Llama-2-7b-hf", "Llama 2 Community License", 6.74e9, _HF.format("meta-llama/Llama-2-7b-hf")
    ),
    "llama2-13b": ZooEntry(
        "meta-llama/Llama-2-13b-hf", "Llama 2 Community License", 13.0e9, _HF.format("meta-llama/Llama-2-13b-hf")
    ),
    "qwen2.5-0.5b": ZooEntry(
        "Qwen/Qwen2.5-0.5B",
        "Apache-2.0",
        0.494e9,
        _HF.format("Qwen/Qwen2.5-0.5B") + "; the model card rounds it to 0.49B",
    ),
    "qwen2.5-1.5b": ZooEntry(
        "Qwen/Qwen2.5-1.5B", "Apache-2.0", 1.54e9, "model card of Qwen/Qwen2.5-1.5B, 'Number of Parameters: 1.54B'"
    ),
    "qwen2.5-3b": ZooEntry(
        "Qwen/Qwen2.5-3B",
        "Qwen Research License",
        3.09e9,
        "model card of Qwen/Qwen2.5-3B, 'Number of Parameters: 3.09B'",
    ),
    "qwen2.5-7b": ZooEntry(
        "Qwen/Qwen2.5-7B", "Apache-2.0", 7.61e9, "model card of Qwen/Qwen2.5-7B, 'Number of Parameters: 7.61B'"
    ),
    "phi3.5-mini": ZooEntry(
        "microsoft/Phi-3.5-mini-instruct",
        "MIT",
        3.82e9,
        _HF.format("microsoft/Phi-3.5-mini-instruct") + "; the card says 3.8B",
    ),
    "gemma2-2b": ZooEntry("google/gemma-2-2b", "Gemma Terms of Use", 2.61e9, _HF.format("google/gemma-2-2b")),
    "gemma2-9b": ZooEntry("google/gemma-2-9b", "Gemma Terms of Use", 9.24e9, _HF.format("google/gemma-2-9b")),
    "mistral-7b": ZooEntry("mistralai/Mistral-7B-v0.1", "Apache-2.0", 7.24e9, _HF.format("mistralai/Mistral-7B-v0.1")),
    "tinyllama-1.1b": ZooEntry(
        "TinyLlama/TinyLlama-1.1B-Chat-v1.0", "Apache-2.0", 1.10e9, _HF.format("TinyLlama/TinyLlama-1.1B-Chat-v1.0")
    ),
    "smollm2-1.7b": ZooEntry(
        "HuggingFaceTB/SmolLM2-1.7B", "Apache-2.0", 1.71e9, _HF.format("HuggingFaceTB/SmolLM2-1.7B")
    ),
    "qwen3-30b-a3b": ZooEntry(
        "Qwen/Qwen3-30B-A3B",
        "Apache-2.0",
        30.5e9,
        "model card of Qwen/Qwen3-30B-A3B, 'Number of Parameters: 30.5B in total and 3.3B activated'",
        published_active=3.3e9,
    ),
    "mixtral-8x7b": ZooEntry(
        "mistralai/Mixtral-8x7B-v0.1",
        "Apache-2.0",
        46.7e9,
        "Mistral AI, 'Mixtral of experts' (mistral.ai/news/mixtral-of-experts): 46.7B total "
        "parameters, 12.9B per token",
        published_active=12.9e9,
    ),
}


def zoo_path(name: str) -> Path:
    return ZOO_DIR / name / "config.json"


@functools.cache
def zoo_model(name: str) -> ModelSpec:
    """The spec of a zoo model, read from its shipped config.json."""
    data, p = read_config(zoo_path(name))
    return spec_from_config(data, name, p)
