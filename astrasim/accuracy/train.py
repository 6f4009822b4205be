"""Measured accuracy of ASTRA on a small real task (``astrasim accuracy``).

Task: scikit-learn's handwritten digits (1797 8x8 images, ten classes; ships with scikit-learn,
no download), a fixed stratified 75/25 train/test split. Model: ``TinyViT`` (2x2 patches: 16
patch tokens + CLS, D=64, 2 layers, 4 heads). Per seed:

1. pre-train the exact model (this is the *original* accuracy; tp/sp/single equal it);
2. for every (G, N): copy it, add one ``GroupedVQ(D, G, K, beta, noise_lambda)`` per layer
   (codebooks initialised from that layer's block inputs on training data), and fine-tune every
   weight and codebook through ``astra_layer`` with cross-entropy + the VQ loss (commitment and
   codebook terms, weighted by beta), noise augmentation in training mode;
3. evaluate in eval mode (codes only, no noise) on the test split: top-1 %.

Ablations (the paper's): noise lambda 0 vs the default, and single vs distributed CLS, each at
one (G, N) point for several seeds. Rows are tidy (one per run) with the seed and all settings;
``accuracy_data.summarize_accuracy`` gives mean, std and n over seeds.
"""

from __future__ import annotations

import copy
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass

import numpy as np
import pandas as pd
import torch
from torch import nn

from astrasim.accuracy.vit import ClsMode, TinyViT
from astrasim.strategies.astra import AstraKnobs

MODEL_NAME = "vit-tiny-digits"
TASK = "digits"
SOURCE = "measured: astrasim accuracy (TinyViT on scikit-learn digits, real astra kernels)"


@dataclass(frozen=True)
class AccuracySettings:
    """Everything that defines a run of ``astrasim accuracy`` (all written into every row)."""

    groups: tuple[int, ...] = (1, 2, 4, 8, 16, 32)
    devices: tuple[int, ...] = (2, 4, 8)
    seeds: tuple[int, ...] = (0,)
    ablation_seeds: tuple[int, ...] = (0, 1, 2)
    ablation_groups: int = 1
    ablation_devices: int = 4
    noise_lambda: float = 1.0
    ablation_noise_lambda: float = 0.0
    codebook: int = AstraKnobs.model_fields["codebook"].default  # the astra strategy's knob default
    beta: float = 0.0002
    hidden: int = 64
    layers: int = 2
    heads: int = 4
    mlp_hidden: int = 128
    patch: int = 2
    batch: int = 128
    pretrain_epochs: int = 20
    pretrain_lr: float = 3e-3
    finetune_epochs: int = 3
    finetune_lr: float = 3e-4
    test_fraction: float = 0.25
    split_seed: int = 0
    threads: int = 2
    ablations: bool = True

    def runs(self) -> list[tuple[int, int, int, float, str, str]]:
        """(seed, G, N, noise_lambda, cls, variant) of every fine-tune, in run order."""
        out = [
            (s, g, n, self.noise_lambda, "distributed", "default")
            for s in self.seeds
            for n in self.devices
            for g in self.groups
        ]
        if self.ablations:
            g, n = self.ablation_groups, self.ablation_devices
            for s in self.ablation_seeds:
                if s not in self.seeds or g not in self.groups or n not in self.devices:
                    out.append((s, g, n, self.noise_lambda, "distributed", "default"))
                out.append((s, g, n, self.ablation_noise_lambda, "distributed", f"noise{self.ablation_noise_lambda:g}"))
                out.append((s, g, n, self.noise_lambda, "single", "single-cls"))
        return out

    def all_seeds(self) -> list[int]:
        return sorted(set(self.seeds) | (set(self.ablation_seeds) if self.ablations else set()))

    def check(self) -> None:
        from astrasim.errors import UserError

        for g in (*self.groups, self.ablation_groups):
            if g < 1 or self.hidden % g:
                raise UserError(f"G={g} must divide the hidden size {self.hidden}", field="groups")
        n_patches = (8 // self.patch) ** 2
        for n in (*self.devices, self.ablation_devices):
            if not 2 <= n <= n_patches:
                raise UserError(
                    f"N={n} devices: use 2..{n_patches} (the model has {n_patches} patch tokens)", field="devices"
                )
        if not self.seeds:
            raise UserError("give at least one seed", field="seeds")
        if self.ablations and len(self.ablation_seeds) < 2:
            raise UserError("ablations need at least two seeds to show a spread", field="ablation_seeds")
        if self.codebook < 2:
            raise UserError("codebook must be >= 2", field="codebook")


@dataclass
class Data:
    x_train: torch.Tensor
    y_train: torch.Tensor
    x_test: torch.Tensor
    y_test: torch.Tensor


def load_digits_split(test_fraction: float = 0.25, seed: int = 0) -> Data:
    """scikit-learn digits as float images in [0, 1], stratified train/test split."""
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    d = load_digits()
    x = (d.images / 16.0).astype(np.float32)
    xtr, xte, ytr, yte = train_test_split(x, d.target, test_size=test_fraction, random_state=seed, stratify=d.target)
    t = torch.from_numpy
    return Data(t(xtr), t(ytr).long(), t(xte), t(yte).long())


def _batches(n: int, batch: int, gen: torch.Generator):
    perm = torch.randperm(n, generator=gen)
    for i in range(0, n, batch):
        yield perm[i : i + batch]


def top1(
    logits_fn: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor, y: torch.Tensor, batch: int = 512
) -> float:
    with torch.no_grad():
        correct = sum(
            int((logits_fn(x[i : i + batch]).argmax(-1) == y[i : i + batch]).sum()) for i in range(0, len(x), batch)
        )
    return 100.0 * correct / len(x)


def pretrain(cfg: AccuracySettings, data: Data, seed: int) -> tuple[TinyViT, float]:
    """Train the exact model; returns (model, test top-1 %)."""
    torch.manual_seed(seed)
    model = TinyViT(patch=cfg.patch, hidden=cfg.hidden, layers=cfg.layers, heads=cfg.heads, mlp_hidden=cfg.mlp_hidden)
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.pretrain_lr, weight_decay=0.01)
    steps = cfg.pretrain_epochs * -(-len(data.x_train) // cfg.batch)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=cfg.pretrain_lr, total_steps=steps)
    gen = torch.Generator().manual_seed(seed)
    model.train()
    for _ in range(cfg.pretrain_epochs):
        for idx in _batches(len(data.x_train), cfg.batch, gen):
            loss = nn.functional.cross_entropy(model(data.x_train[idx]), data.y_train[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
    model.eval()
    return model, top1(model, data.x_test, data.y_test)


def _init_codebooks(model: TinyViT, vqs: nn.ModuleList, x: torch.Tensor) -> None:
    """Each layer's codebook starts from that layer's exact block inputs (patch tokens) on x."""
    with torch.no_grad():
        h = model.sequence(x)
        for block, vq in zip(model.blocks, vqs):
            vq.init_from(h[:, 1:])
            h = block(h)


def finetune(
    base: TinyViT,
    cfg: AccuracySettings,
    data: Data,
    *,
    seed: int,
    groups: int,
    n_devices: int,
    noise_lambda: float,
    cls: ClsMode,
) -> dict:
    """Fine-tune a copy of ``base`` as ASTRA(G, N); returns the measured figures of the run."""
    from astrasim.kernels.vq import GroupedVQ

    torch.manual_seed(seed * 1000 + groups * 10 + n_devices)
    model = copy.deepcopy(base)
    vqs = nn.ModuleList(
        GroupedVQ(cfg.hidden, groups, cfg.codebook, beta=cfg.beta, noise_lambda=noise_lambda) for _ in model.blocks
    )
    _init_codebooks(model, vqs, data.x_train)

    def logits(x):
        return model.forward_astra(x, vqs, n_devices, cls)[0]

    model.eval()
    vqs.eval()
    before = top1(logits, data.x_test, data.y_test)
    params = list(model.parameters()) + list(vqs.parameters())
    opt = torch.optim.AdamW(params, lr=cfg.finetune_lr, weight_decay=0.0)
    gen = torch.Generator().manual_seed(seed + 7919)
    model.train()
    vqs.train()
    t0 = time.perf_counter()
    task_loss = vq_loss = torch.zeros(())
    for _ in range(cfg.finetune_epochs):
        for idx in _batches(len(data.x_train), cfg.batch, gen):
            out, vq_loss = model.forward_astra(data.x_train[idx], vqs, n_devices, cls)
            task_loss = nn.functional.cross_entropy(out, data.y_train[idx])
            opt.zero_grad(set_to_none=True)
            (task_loss + vq_loss).backward()
            opt.step()
    model.eval()
    vqs.eval()
    return {
        "value": top1(logits, data.x_test, data.y_test),
        "value_before_finetune": before,
        "final_task_loss": float(task_loss.detach()),
        "final_vq_loss": float(vq_loss.detach()),
        "bits_per_token": vqs[0].bits_per_token,
        "finetune_s": time.perf_counter() - t0,
    }


def _settings_columns(cfg: AccuracySettings) -> dict:
    keep = (
        "codebook",
        "beta",
        "hidden",
        "layers",
        "heads",
        "mlp_hidden",
        "patch",
        "batch",
        "pretrain_epochs",
        "pretrain_lr",
        "finetune_epochs",
        "finetune_lr",
        "test_fraction",
        "split_seed",
        "threads",
    )
    d = asdict(cfg)
    return {k: d[k] for k in keep}


def run_accuracy(cfg: AccuracySettings, *, progress: Callable[[str], None] | None = None) -> pd.DataFrame:
    """Run the whole grid (pre-training per seed, fine-tunes, ablations); one row per run.

    ``progress(message)`` is called after every pre-training and fine-tune (for a progress bar)."""
    cfg.check()
    torch.set_num_threads(cfg.threads)
    data = load_digits_split(cfg.test_fraction, cfg.split_seed)
    common = {"model": MODEL_NAME, "task": TASK, "metric": "top1_pct", "higher_is_better": True, "source": SOURCE}
    settings = _settings_columns(cfg)
    rows: list[dict] = []
    bases: dict[int, TinyViT] = {}
    for seed in cfg.all_seeds():
        t0 = time.perf_counter()
        bases[seed], acc = pretrain(cfg, data, seed)
        rows.append(
            {
                **common,
                "strategy": "single",
                "groups": 0,
                "devices": None,
                "value": acc,
                "variant": "default",
                "seed": seed,
                "noise_lambda": None,
                "cls": "single",
                "value_before_finetune": None,
                "bits_per_token": 32 * cfg.hidden,
                "finetune_s": None,
                "train_s": time.perf_counter() - t0,
                **settings,
                "notes": "original model (exact; tp and sp join to it)",
            }
        )
        if progress:
            progress(f"pre-train seed {seed}: {acc:.1f} %")
    for seed, g, n, lam, cls, variant in cfg.runs():
        r = finetune(bases[seed], cfg, data, seed=seed, groups=g, n_devices=n, noise_lambda=lam, cls=cls)
        rows.append(
            {
                **common,
                "strategy": "astra",
                "groups": g,
                "devices": n,
                "value": r["value"],
                "variant": variant,
                "seed": seed,
                "noise_lambda": lam,
                "cls": cls,
                "value_before_finetune": r["value_before_finetune"],
                "bits_per_token": r["bits_per_token"],
                "finetune_s": r["finetune_s"],
                "train_s": r["finetune_s"],
                **settings,
                "notes": f"final task loss {r['final_task_loss']:.3f}, VQ loss {r['final_vq_loss']:.2e}",
            }
        )
        if progress:
            progress(f"{variant} seed {seed} G={g} N={n}: {r['value']:.1f} %")
    df = pd.DataFrame(rows)
    df["torch_version"] = torch.__version__
    first = [
        "model",
        "task",
        "strategy",
        "groups",
        "devices",
        "metric",
        "value",
        "higher_is_better",
        "source",
        "variant",
        "seed",
        "noise_lambda",
        "cls",
        "value_before_finetune",
        "bits_per_token",
    ]
    return df[first + [c for c in df.columns if c not in first]]


def n_steps(cfg: AccuracySettings) -> int:
    """Progress steps of ``run_accuracy``: one per pre-training and per fine-tune."""
    return len(cfg.all_seeds()) + len(cfg.runs())


def ablation_table(df: pd.DataFrame) -> pd.DataFrame:
    """Mean ± std over seeds of the ablation point: one row per variant."""
    astra = df[df["strategy"] == "astra"]
    counts = astra.groupby(["groups", "devices"])["variant"].nunique()
    if counts.empty or counts.max() < 2:
        return pd.DataFrame(columns=["variant", "noise_lambda", "cls", "groups", "devices", "mean", "std", "n"])
    g, n = counts.idxmax()
    point = astra[(astra["groups"] == g) & (astra["devices"] == n)]
    seeds = set.intersection(*(set(s) for _, s in point.groupby("variant")["seed"]))
    point = point[point["seed"].isin(seeds)]  # compare variants on the same seeds
    out = (
        point.groupby(["variant", "noise_lambda", "cls"], sort=False)["value"]
        .agg(mean="mean", std="std", n="count")
        .reset_index()
    )
    out.insert(3, "groups", int(g))
    out.insert(4, "devices", int(n))
    return out


def grid_table(df: pd.DataFrame) -> pd.DataFrame:
    """Mean top-1 % (default variant) per G (rows) and N (columns), plus the original model."""
    astra = df[(df["strategy"] == "astra") & (df["variant"] == "default")]
    table = astra.pivot_table(index="groups", columns="devices", values="value", aggfunc="mean")
    table.columns = [f"N={int(c)}" for c in table.columns]
    table.index = [f"G={int(g)}" for g in table.index]
    return table
