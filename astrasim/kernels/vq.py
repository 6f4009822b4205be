"""Grouped vector quantization (ASTRA's token codes).

A D-dim embedding is cut into G groups of d = D/G dims; group g has its own codebook of K entries
(one GroupedVQ per layer, so codebooks are separate per group and per layer). A token travels as G
indices of ceil(log2 K) bits each.

* encode: nearest code per group, all tokens and groups at once: one batched matmul
  ``scores[g] = ||c_g||^2 - 2 x_g c_g^T`` ([G, M, d] x [G, d, K], code norms precomputed and cached
  until the codebook changes, written into a reused workspace) followed by an argmin over K.
  No Python loop over tokens or groups.
* decode: a gather from the flattened [G*K, d] codebook.
* forward (training and evaluation): x_hat with the straight-through gradient (d x_hat / d x = I),
  the codes, and the VQ loss ``beta * (||sg(x) - q||^2 + ||x - sg(q)||^2)`` (mean over elements): the
  codebook term pulls codes to the embeddings, the commitment term the embeddings to the codes;
  both weighted by beta (the paper's beta in {1e-4, 2e-4, 5e-4} weighs the VQ loss against the task
  loss).
* noise augmentation (training mode only, ``noise_lambda`` > 0): the residual r = x - q is fitted
  by a Gaussian per feature (mean and std over the tokens of the batch), and
  ``lambda * N(mean, std^2)`` is added to x_hat. In evaluation mode x_hat == decode(encode(x)).
"""

from __future__ import annotations

import math

import torch
from torch import nn

from astrasim.errors import UserError
from astrasim.kernels import fused

Tensor = torch.Tensor


class GroupedVQ(nn.Module):
    def __init__(
        self,
        dim: int,
        groups: int,
        codebook_size: int = 1024,
        beta: float = 0.0002,
        noise_lambda: float = 0.0,
        *,
        dtype: torch.dtype = torch.float32,
    ):
        super().__init__()
        if groups < 1 or dim % groups:
            raise UserError(f"groups={groups} must be a positive divisor of the hidden size {dim}", field="groups")
        if codebook_size < 2:
            raise UserError(f"codebook size must be at least 2, got {codebook_size}", field="codebook")
        if beta < 0 or noise_lambda < 0:
            raise UserError("beta and noise_lambda must be >= 0", field="beta" if beta < 0 else "noise_lambda")
        self.dim, self.groups, self.codebook_size = dim, groups, codebook_size
        self.group_dim = dim // groups
        self.beta, self.noise_lambda = beta, noise_lambda
        self.codebook = nn.Parameter(torch.randn(groups, codebook_size, self.group_dim, dtype=dtype))
        self._cache_key: tuple | None = None
        self._norms: Tensor | None = None
        self._fused_key: Tensor | None = None  # the norms tensor the fused tables were built with
        self._cbt: Tensor | None = None
        self._norms_flat: Tensor | None = None
        self._scores: Tensor | None = None  # reused [G, M, K] workspace: no fresh 10s-of-MB buffer per call

    # -- sizes ---------------------------------------------------------------------------------------
    @property
    def index_bits(self) -> int:
        """Bits of one code index: ceil(log2 K) (10 for K = 1024)."""
        return math.ceil(math.log2(self.codebook_size))

    @property
    def bits_per_token(self) -> int:
        """G * log2 K bits carry one token (K a power of two; otherwise ceil(log2 K) per index)."""
        return self.groups * self.index_bits

    def compression_ratio(self, element_bits: int = 32) -> float:
        """Size of the full-precision embedding over the size of its codes (fp32: 32 * D / (G log2 K))."""
        return element_bits * self.dim / self.bits_per_token

    @torch.no_grad()
    def init_from(self, x: Tensor) -> None:
        """Initialise every group's codebook with K embeddings drawn from x[..., dim] (with replacement
        when x has fewer than K tokens): a data-dependent start for fine-tuning."""
        flat = x.detach().reshape(-1, self.groups, self.group_dim)
        pick = (
            torch.randint(flat.shape[0], (self.codebook_size,), device=flat.device)
            if flat.shape[0] < self.codebook_size
            else torch.randperm(flat.shape[0], device=flat.device)[: self.codebook_size]
        )
        self.codebook.copy_(flat[pick].transpose(0, 1).to(self.codebook.dtype))

    # -- encode / decode -----------------------------------------------------------------------------
    def _code_norms(self) -> Tensor:
        """||c||^2 of every code, [G, 1, K], recomputed only when the codebook changed."""
        cb = self.codebook
        # inference tensors have no version counter (and cannot change outside inference mode)
        key = (cb.data_ptr(), None if cb.is_inference() else cb._version, cb.dtype, cb.device)
        if key != self._cache_key:
            with torch.no_grad():
                self._norms = cb.detach().pow(2).sum(-1).unsqueeze(1)
            self._cache_key = key
        return self._norms

    def _fused_ok(self, x: Tensor) -> bool:
        """The fused C kernel (`fused.py`) serves float32 CPU tensors where it could be built."""
        cb = self.codebook
        return (
            x.dtype == torch.float32
            and cb.dtype == torch.float32
            and x.device.type == "cpu"
            and cb.device.type == "cpu"
            and fused.available()
            and self.codebook_size % fused.tile() == 0
        )

    def _fused_tables(self) -> tuple[Tensor, Tensor]:
        """(codebook in the kernel's tiled layout, norms [G, K]), both contiguous, rebuilt with the norms."""
        norms = self._code_norms()
        if self._fused_key is not self._norms:
            with torch.no_grad():
                self._cbt = fused.tiled_codebook(self.codebook.detach())
                self._norms_flat = norms.reshape(self.groups, self.codebook_size).contiguous()
            self._fused_key = self._norms
        return self._cbt, self._norms_flat

    @torch.no_grad()
    def encode(self, x: Tensor) -> Tensor:
        """Nearest code of every group: x[..., dim] -> LongTensor[..., groups]."""
        if x.shape[-1] != self.dim:
            raise ValueError(f"expected last dim {self.dim}, got {tuple(x.shape)}")
        lead = x.shape[:-1]
        if self._fused_ok(x):
            xm = x.detach().reshape(-1, self.groups, self.group_dim).contiguous()  # [M, G, d]
            cbt, norms = self._fused_tables()
            return fused.nearest_codes(xm, cbt, norms).reshape(*lead, self.groups)
        xg = x.detach().reshape(-1, self.groups, self.group_dim).transpose(0, 1)  # [G, M, d]
        cb = self.codebook.detach()
        shape = (self.groups, xg.shape[1], self.codebook_size)
        ws = self._scores
        if (
            ws is None
            or ws.shape != shape
            or ws.dtype != cb.dtype
            or ws.device != cb.device
            or ws.is_inference() != torch.is_inference_mode_enabled()
        ):
            ws = self._scores = torch.empty(shape, dtype=cb.dtype, device=cb.device)
        scores = torch.baddbmm(self._code_norms(), xg.to(cb.dtype), cb.transpose(1, 2), alpha=-2.0, out=ws)
        return nearest(scores).transpose(0, 1).reshape(*lead, self.groups)

    def decode(self, codes: Tensor) -> Tensor:
        """Codes[..., groups] -> x_hat[..., dim] (a gather; differentiable w.r.t. the codebook)."""
        if codes.shape[-1] != self.groups:
            raise ValueError(f"expected last dim {self.groups} (groups), got {tuple(codes.shape)}")
        offsets = torch.arange(self.groups, device=codes.device) * self.codebook_size
        flat = self.codebook.reshape(self.groups * self.codebook_size, self.group_dim)
        return flat[codes + offsets].reshape(*codes.shape[:-1], self.dim)

    # -- training-time quantizer -----------------------------------------------------------------------
    def forward(self, x: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """(x_hat, codes, vq_loss). x_hat carries the straight-through gradient to x; in training mode
        with noise_lambda > 0 it also carries the fitted Gaussian noise."""
        codes = self.encode(x)
        q = self.decode(codes).to(x.dtype)
        loss = self.beta * (torch.mean((q - x.detach()) ** 2) + torch.mean((x - q.detach()) ** 2))
        target = q.detach()
        if self.training and self.noise_lambda > 0:
            residual = (x.detach() - target).reshape(-1, self.dim)
            mean = residual.mean(0)
            std = residual.std(0, unbiased=False)
            target = target + self.noise_lambda * (mean + std * torch.randn_like(target))
        x_hat = target + (x - x.detach())  # straight-through, exact value; the codebook learns from the loss
        return x_hat, codes, loss

    def extra_repr(self) -> str:
        return (
            f"dim={self.dim}, groups={self.groups}, codebook_size={self.codebook_size}, "
            f"beta={self.beta}, noise_lambda={self.noise_lambda}"
        )


def nearest(scores: Tensor, block: int = 32) -> Tensor:
    """Index of the smallest score along the last dim (first one on ties), exactly as torch.argmin.

    Two stages, both vectorised: the minimum of every block of `block` consecutive scores (amin is
    a fast SIMD reduction), the first block holding the overall minimum, then argmin inside that
    block only. torch's CPU argmin over a long last dim is a scalar loop (~1 ns per score); this is
    ~2x faster on the [G, M, K] score tensor and returns the same index."""
    k = scores.shape[-1]
    if k % block or k < 2 * block:
        return scores.argmin(-1)
    blocks = scores.reshape(-1, k // block, block)
    which = blocks.amin(-1).argmin(-1, keepdim=True)  # [R, 1]
    inside = torch.gather(blocks, 1, which.unsqueeze(-1).expand(-1, 1, block)).squeeze(1)  # [R, block]
    return (which.squeeze(1) * block + inside.argmin(-1)).view(scores.shape[:-1])
