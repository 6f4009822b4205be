"""A tiny Vision Transformer for scikit-learn's 8x8 digits, run exactly or as ASTRA on N devices.

Exact path: patch embedding + a CLS token + learned positions, ``layers`` pre-norm
``ReferenceBlock``s, final LayerNorm and a linear head on the CLS output.

ASTRA path (``forward_astra``), built from the real kernels (astrasim.kernels):

* the tokens are split into N contiguous partitions by ``astra_parts`` (the project's split rule,
  ``torch.tensor_split`` order);
* every layer is ``astra_layer(block, vq[layer], parts, cls_copies=...)``: each device attends to
  its own tokens at full precision and to the other devices' tokens through their grouped-VQ
  codes (one ``GroupedVQ`` per layer: separate codebooks per group and per layer);
* distributed CLS (``cls="distributed"``): every device holds a private copy of the CLS token
  (never quantized nor sent); the N CLS outputs are mean-pooled by ``pool_cls`` before the head.
  Single CLS (``cls="single"``): the CLS token is an ordinary token of device 0 (the others see
  it only through its codes) and the head reads device 0's CLS output.
"""

from __future__ import annotations

from typing import Literal

import torch
from torch import nn

from astrasim.kernels.block import ReferenceBlock

Tensor = torch.Tensor
ClsMode = Literal["distributed", "single"]


class TinyViT(nn.Module):
    def __init__(
        self,
        *,
        image: int = 8,
        patch: int = 2,
        hidden: int = 64,
        layers: int = 2,
        heads: int = 4,
        mlp_hidden: int = 128,
        classes: int = 10,
    ):
        super().__init__()
        if image % patch:
            raise ValueError(f"patch {patch} must divide the image size {image}")
        self.patch, self.hidden = patch, hidden
        self.n_patches = (image // patch) ** 2
        self.embed = nn.Linear(patch * patch, hidden)
        self.cls = nn.Parameter(torch.zeros(1, 1, hidden))
        self.pos = nn.Parameter(torch.randn(1, self.n_patches + 1, hidden) * 0.02)
        self.blocks = nn.ModuleList(
            ReferenceBlock.from_dims(hidden, heads, mlp_hidden=mlp_hidden, name="vit-tiny-digits")
            for _ in range(layers)
        )
        self.norm = nn.LayerNorm(hidden)
        self.head = nn.Linear(hidden, classes)

    @property
    def tokens(self) -> int:
        """Sequence length T including the CLS token."""
        return self.n_patches + 1

    def sequence(self, images: Tensor) -> Tensor:
        """[B, H, W] -> the block input [B, T, D]: CLS token first, then the patches (row-major),
        positions added."""
        b, h, w = images.shape
        p = self.patch
        x = images.reshape(b, h // p, p, w // p, p).permute(0, 1, 3, 2, 4).reshape(b, -1, p * p)
        return torch.cat([self.cls.expand(b, -1, -1), self.embed(x)], dim=1) + self.pos

    def forward(self, images: Tensor) -> Tensor:
        """Exact single-device forward: logits [B, classes]."""
        x = self.sequence(images)
        for block in self.blocks:
            x = block(x)
        return self.head(self.norm(x[:, 0]))

    def forward_astra(
        self, images: Tensor, vqs: nn.ModuleList, n_devices: int, cls: ClsMode = "distributed"
    ) -> tuple[Tensor, Tensor]:
        """ASTRA forward on ``n_devices`` simulated devices: (logits, summed VQ loss of all layers)."""
        from astrasim.kernels.astra import astra_layer, astra_parts, pool_cls

        if cls not in ("distributed", "single"):
            raise ValueError(f"cls must be 'distributed' or 'single', got {cls!r}")
        x = self.sequence(images)
        # distributed: every part = [CLS copy, its patches]; single: the CLS is device 0's first token
        parts = astra_parts(x, n_devices, cls_token=cls == "distributed")
        loss = x.new_zeros(())
        for block, vq in zip(self.blocks, vqs):
            parts, layer_loss = astra_layer(block, vq, parts, cls_copies=cls == "distributed")
            loss = loss + layer_loss
        pooled = pool_cls(parts) if cls == "distributed" else parts[0][:, 0]
        return self.head(self.norm(pooled)), loss
