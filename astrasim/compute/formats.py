"""Weight formats as edge runtimes store them: the true bits per weight including scales, the bits of
the output head (LM head) as the runtime keeps it, the precision the activations and KV cache stay in,
and the matmul precisions the runtime's kernels use (the first one the device has is used).

Bits per weight follow the storage layouts:

* GGUF (llama.cpp, ggml/src/ggml-common.h): q8_0 is a block of 32 int8 weights plus one fp16 scale =
  34 bytes / 32 weights = 8.5 bits; q4_0 is 32 4-bit weights plus one fp16 scale = 18 bytes / 32 = 4.5
  bits; q4_K = 4.5 bits and q6_K = 6.5625 bits per weight (super-blocks of 256). Q4_K_M stores most
  tensors as q4_K and half of attn_v / ffn_down plus the output tensor as q6_K: about 4.85 bits per
  weight over the layers (llama.cpp's quantize tool reports 4.89 bits for Llama-3-8B Q4_K_M, output
  included). llama.cpp keeps the norms in f32 and, for q4_0 / Q4_K_M files, the output tensor in q6_K
  (src/llama-quant.cpp: the output tensor gets q6_K unless the type is q8_0 or wider).
* distributed-llama (b4rtaz/distributed-llama) Q40 weights are q4_0 blocks; it keeps the token
  embedding in f32 (read one row per token) and the norms in f32. Its LM head (`wcls`) is Q40 too:
  `llamaFinalize` multiplies it at `spec->weightsFloatType` (src/llama2-tasks.cpp @ 83745fd), so
  `q40` is q4_0 with the head at 4.5 bits (llama.cpp's q4_0 files keep it in q6_K).
* AWQ / GPTQ w4a16 ("int4"): 4-bit weights with one fp16 scale and one 4-bit zero per group of 128:
  4 + (16 + 4) / 128 = 4.16, stored as 4.25 with the packed zero words; the LM head stays fp16.
* MLC LLM's q4f16_ft (mlc-ai/mlc-llm python/mlc_llm/quantization/quantization.py and
  ft_quantization.py): FasterTransformer int4 weights with one fp16 scale per output column
  (group_size None: 4 + 16 / in_features, 4.004 bits for a 4096-wide input), and the final FC (LM head)
  falls back to GroupQuantize, int4 in groups of 32 with an fp16 scale: 4.5 bits.

Activations and the KV cache: fp32 for fp32 weights, fp16 otherwise (llama.cpp's default KV cache
type is f16; GPU runtimes run fp16 activations).
"""

from __future__ import annotations

from dataclasses import dataclass

from astrasim.errors import UserError


@dataclass(frozen=True)
class WeightFormat:
    name: str
    bits: float  # bits per layer weight, scales included
    head_bits: float  # bits per weight of the output head (LM head) as the runtime keeps it
    activation_bytes: int  # activations and KV cache element size
    compute: tuple[str, ...]  # matmul precisions its kernels use, in order of preference
    nominal_bits: int  # the `weight_bits` shorthand this format answers to (results column)


FORMATS: dict[str, WeightFormat] = {
    f.name: f
    for f in (
        WeightFormat("fp32", 32.0, 32.0, 4, ("fp32",), 32),
        WeightFormat("fp16", 16.0, 16.0, 2, ("fp16", "fp32"), 16),
        WeightFormat("bf16", 16.0, 16.0, 2, ("fp16", "fp32"), 16),
        WeightFormat("q8_0", 8.5, 8.5, 2, ("int8",), 8),
        WeightFormat("q4_0", 4.5, 6.5625, 2, ("int8",), 4),
        WeightFormat("q4_k_m", 4.85, 6.5625, 2, ("int8",), 4),
        WeightFormat("int4", 4.25, 16.0, 2, ("int4", "fp16"), 4),
        WeightFormat("q40", 4.5, 4.5, 2, ("int8",), 4),
        WeightFormat("q4f16_ft", 4.004, 4.5, 2, ("int4", "fp16"), 4),
    )
}

# `weight_bits` as a shorthand: the format edge runtimes ship at that width
SHORTHAND = {32: "fp32", 16: "fp16", 8: "q8_0", 4: "q4_0"}
PRECISIONS = ("fp32", "fp16", "int8", "int4")


def weight_format(name: str, field: str = "weight_format") -> WeightFormat:
    """The named format, or a UserError listing the known ones."""
    fmt = FORMATS.get(str(name).lower())
    if fmt is None:
        raise UserError(f"unknown weight format '{name}'; use one of {', '.join(FORMATS)}", field=field)
    return fmt


def format_of_bits(bits: int) -> WeightFormat:
    return FORMATS[SHORTHAND[int(bits)]]
