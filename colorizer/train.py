"""Training: losses, the training loop, checkpoints and resuming (photos, crops and batches are
colorizer/data.py).

    python -m colorizer train --data DIR [DIR ...] --val DIR --arch backbone_unet \
        --encoder efficientnet_lite0 --head classification --out weights/NAME.pt

One epoch is --epoch-size random augmented crops, planned from (--seed, epoch) so that a run
resumes exactly. After each epoch: validation loss on --val, reduce-on-plateau learning rate, the
best epoch written to --out (fp16, ready to ship), and a resume file (--out + '.resume', full
precision with the optimizer, the scheduler, the loop's position and the random states), which is
also written every --checkpoint-minutes and on SIGTERM / SIGINT, so that --resume carries on from
the step where a run stopped. --time-budget ends this invocation cleanly (resumable); early
stopping after --patience epochs without improvement; --max-minutes bounds the whole run.
The forward passes run under autocast (bfloat16 on CPUs with native support, --precision), on
--device cpu or cuda, and under torchrun with DistributedDataParallel (gloo on CPUs, NCCL on
GPUs: each process takes its share of every batch). --adv-weight adds adversarial fine-tuning
against a patch discriminator (Adversary below) and keeps every epoch's checkpoint.
"""
from __future__ import annotations

import json
import math
import os
import random
import signal
import sys
import time
from dataclasses import dataclass, asdict, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from . import lab
from .data import (IMAGE_EXTENSIONS, BatchBuilder, HintSampling, PhotoCache, augmented_crop, epoch_plan,
                   find_images, folder_shares, lab_batch, load_images)
from .models import build_model
from .models.heads import HEADS, DEFAULT_TEMPERATURE, annealed_mean
from .weights import save_checkpoint, load_state_dict_strict, read_checkpoint

__all__ = ["IMAGE_EXTENSIONS", "find_images", "load_images", "lab_batch", "TrainConfig", "train"]

# the 313 in-gamut ab bin centres (grid 10) of Zhang et al. 2016 (BSD-2-Clause), shipped with the package
AB_BINS_313 = Path(__file__).resolve().parent / "data" / "ab_bins_313.npy"


def crop_sampler(folder_of: list[int], shares: list[float] | None = None, epoch_size: int = 4000):
    """Which photo each of an epoch's crops comes from. folder_of gives each photo's folder (an
    index into shares): without shares every photo is equally likely; with them each folder's
    share is divided among its photos, so each folder gives its share whatever its size."""
    if shares is None:
        return torch.utils.data.RandomSampler(range(len(folder_of)), replacement=True, num_samples=epoch_size)
    counts = np.bincount(folder_of, minlength=len(shares))
    weights = [shares[f] / counts[f] for f in folder_of]
    return torch.utils.data.WeightedRandomSampler(weights, epoch_size, replacement=True)


class AugmentedCrops(torch.utils.data.Dataset):
    """Random crop of crop_size with random scale, small rotation and horizontal flip."""

    def __init__(self, images, crop_size=128, scale=(0.75, 1.25), max_rotation=10.0, p_rotate=0.3):
        self.images, self.crop, self.scale = images, crop_size, scale
        self.max_rotation, self.p_rotate = max_rotation, p_rotate

    def __len__(self):
        return len(self.images)

    def __getitem__(self, i):
        # the global random module: DataLoader seeds it in each worker (the old path; `train`
        # itself plans its crops with colorizer.data.BatchBuilder)
        return torch.from_numpy(augmented_crop(self.images[i], self.crop, random, self.scale,
                                               self.max_rotation, self.p_rotate))


def center_crops(images, multiple=32, max_side=256) -> list[np.ndarray]:
    """Deterministic validation inputs: centre crops with sides a multiple of `multiple`."""
    out = []
    for img in images:
        h, w = img.shape[:2]
        ch = min(max_side, h) // multiple * multiple
        cw = min(max_side, w) // multiple * multiple
        if ch < multiple or cw < multiple:
            continue
        y, x = (h - ch) // 2, (w - cw) // 2
        out.append(img[y:y + ch, x:x + cw])
    return out


# --- colour hints sampled from the truth (training a hint model) -----------------------------

def sample_hints(ab: torch.Tensor, p_none: float = 0.3, mean_count: float = 8.0, max_count: int = 40,
                 max_radius: int = 2, generator: random.Random | None = None, points: list | None = None
                 ) -> torch.Tensor:
    """Random user hints taken from the true colours, as in Zhang et al. 2017.

    ab: N x 2 x H x W (Lab units) -> N x 3 x H x W (a / AB_NORM, b / AB_NORM, mask). Each photo
    gets no hints with probability p_none, else a geometric number of them (mean `mean_count`, at
    most max_count) at uniform positions; a hint is a square patch of half-size 0..max_radius
    holding the patch's mean true colour. A list passed as `points` receives, for each photo,
    its hints as the pipeline takes them: [(x, y, a, b)] (centre pixel, colour in Lab units).
    """
    rng = generator or random
    n, _, h, w = ab.shape
    out = torch.zeros(n, 3, h, w)
    q = 1.0 / max(1.0, mean_count)
    for i in range(n):
        if points is not None:
            points.append([])
        if rng.random() < p_none:
            continue
        count = 1
        while count < max_count and rng.random() > q:
            count += 1
        for _ in range(count):
            r = rng.randint(0, max_radius)
            cy, cx = rng.randrange(h), rng.randrange(w)
            y0, y1, x0, x1 = max(0, cy - r), min(h, cy + r + 1), max(0, cx - r), min(w, cx + r + 1)
            colour = ab[i, :, y0:y1, x0:x1].mean(dim=(1, 2)) / lab.AB_NORM
            out[i, 0, y0:y1, x0:x1] = colour[0]
            out[i, 1, y0:y1, x0:x1] = colour[1]
            out[i, 2, y0:y1, x0:x1] = 1.0
            if points is not None:
                points[i].append((cx, cy, float(colour[0]) * lab.AB_NORM, float(colour[1]) * lab.AB_NORM))
    return out


# --- classification targets and class rebalancing -------------------------------------------

def soft_encode(ab: torch.Tensor, bins: torch.Tensor, k: int = 5, sigma: float = 5.0):
    """ab N x 2 x H x W -> (indices N x k x H x W, weights N x k x H x W) of the k nearest bins,
    Gaussian-weighted (Zhang et al.: 5 neighbours, sigma 5)."""
    n, _, h, w = ab.shape
    flat = ab.permute(0, 2, 3, 1).reshape(-1, 2)
    d2 = torch.cdist(flat, bins).pow_(2)
    dist, idx = torch.topk(d2, k, dim=1, largest=False)
    wts = torch.softmax(-dist / (2 * sigma * sigma), dim=1)
    idx = idx.reshape(n, h, w, k).permute(0, 3, 1, 2)
    wts = wts.reshape(n, h, w, k).permute(0, 3, 1, 2)
    return idx, wts


def rebalance_weights(images, bins: np.ndarray, lam: float = 0.5, sigma: float = 5.0,
                      sample: int = 3000, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Empirical ab-bin prior of the training photos (smoothed) and Zhang's rebalancing weights
    w ~ 1 / ((1 - lam) p + lam / K), normalized so that E_p[w] = 1."""
    rng = np.random.default_rng(seed)
    pick = rng.choice(len(images), size=min(sample, len(images)), replace=False)
    counts = np.zeros(len(bins), dtype=np.float64)
    tb = torch.from_numpy(bins)
    for i in pick:
        im = Image.fromarray(images[i])
        im = im.resize((64, max(1, round(64 * im.height / im.width))), Image.BILINEAR)
        ab = torch.from_numpy(lab.rgb_to_lab(np.asarray(im))[..., 1:].reshape(-1, 2).copy())
        nearest = torch.cdist(ab, tb).argmin(1).numpy()
        counts += np.bincount(nearest, minlength=len(bins))
    p = counts / counts.sum()
    d2 = ((bins[:, None, :] - bins[None, :, :]) ** 2).sum(-1)
    kern = np.exp(-d2 / (2 * sigma * sigma))
    p = kern @ p
    p /= p.sum()
    w = 1.0 / ((1 - lam) * p + lam / len(bins))
    w /= (p * w).sum()
    return p.astype(np.float32), w.astype(np.float32)


DECODE_LOSSES = ("mse", "de94")


def delta_e94_ab(ab_hat: torch.Tensor, ab: torch.Tensor) -> torch.Tensor:
    """Per-pixel CIE94 colour difference (graphic arts: K1 0.045, K2 0.015) between predicted
    and true chroma at the same lightness, differentiable: N x 2 x H x W (Lab units) -> N x H x W.
    Unlike the squared error it forgives a saturated colour a chroma error in proportion to its
    chroma, as Delta E 2000 does, instead of teaching the network to mute saturated colours."""
    da, db = ab_hat[:, 0] - ab[:, 0], ab_hat[:, 1] - ab[:, 1]
    c_true = ab.pow(2).sum(1).sqrt()
    dc = c_true - (ab_hat.pow(2).sum(1) + 1e-6).sqrt()
    dh2 = (da * da + db * db - dc * dc).clamp_min(0.0)
    return ((dc / (1 + 0.045 * c_true)).pow(2) + dh2 / (1 + 0.015 * c_true).pow(2) + 1e-6).sqrt()


class ColorLoss:
    """Loss on the head's raw output: regression (mse | l1 | huber on ab / AB_NORM) or
    rebalanced soft-encoded cross-entropy over ab bins.

    decode_weight > 0 (classification) adds decode_weight x the mean squared error, in ab / AB_NORM,
    of the colours the head will actually output: the annealed mean at `temperature` of the logits
    with `correction` of the rebalancing taken back, times `gain` (and, for a hint model trained
    through the spreading, with the hints spread). ce_weight scales the cross-entropy (0: the
    decoded colours alone). The cross-entropy alone teaches a distribution;
    this term teaches the network to be only as confident as it is right, so the sharpened
    decoding stays vivid where the colour is certain and turns cautious where it is not.
    """

    def __init__(self, head: str, regression_loss: str = "huber", bins=None, class_weights=None,
                 decode_weight: float = 0.0, temperature: float = DEFAULT_TEMPERATURE,
                 correction: float = 0.0, gain: float = 1.0, ce_weight: float = 1.0,
                 decode_loss: str = "mse"):
        if decode_loss not in DECODE_LOSSES:
            raise ValueError(f"decode loss must be one of {', '.join(DECODE_LOSSES)}, not {decode_loss!r}")
        self.head, self.regression_loss = head, regression_loss
        self.ce_weight = ce_weight
        self.decode_loss = decode_loss
        self.bins = bins
        self.class_weights = class_weights
        self.decode_weight = decode_weight
        self.temperature, self.correction, self.gain = temperature, correction, gain

    def decode(self, out: torch.Tensor) -> torch.Tensor:
        """The colours (N x 2 x h x w, Lab units) the head outputs for these network outputs:
        regression as is; classification by the annealed mean at `temperature`, with `correction`
        of the rebalancing taken back, times `gain`."""
        if self.head == "regression":
            return out * lab.AB_NORM
        logits = out.float()
        if self.correction and self.class_weights is not None:
            logits = logits - self.correction * self.class_weights.log()[None, :, None, None]
        ab_hat = annealed_mean(logits, self.bins, self.temperature)
        return ab_hat * self.gain if self.gain != 1.0 else ab_hat

    def __call__(self, out: torch.Tensor, ab: torch.Tensor, spread=None) -> torch.Tensor:
        """spread: a function applied to the decoded colours (N x 2 x h x w, Lab units) before
        their error is taken, as the app applies hint spreading (SpreadThrough)."""
        if out.shape[-2:] != ab.shape[-2:]:  # target at the output's resolution
            ab = F.adaptive_avg_pool2d(ab, out.shape[-2:])
        if self.head == "regression":
            target = ab / lab.AB_NORM
            if self.regression_loss == "mse":
                return F.mse_loss(out, target)
            if self.regression_loss == "l1":
                return F.l1_loss(out, target)
            return F.smooth_l1_loss(out, target, beta=0.1)
        idx, wts = soft_encode(ab, self.bins)
        logp = F.log_softmax(out.float(), dim=1)
        ce = -(logp.gather(1, idx) * wts).sum(1)  # N x H x W
        if self.class_weights is not None:
            ce = ce * self.class_weights[idx[:, 0]]
        loss = self.ce_weight * ce.mean()
        if self.decode_weight:
            ab_hat = self.decode(out)
            if spread is not None:
                ab_hat = spread(ab_hat)
            if self.decode_loss == "de94":
                loss = loss + self.decode_weight * delta_e94_ab(ab_hat, ab).mean()
            else:
                loss = loss + self.decode_weight * F.mse_loss(ab_hat / lab.AB_NORM, ab / lab.AB_NORM)
        return loss


class SpreadThrough:
    """The hint spreading the app applies after the network (colorizer.hints.spread_hints), for
    one batch of training crops and their sampled hints: called on the decoded colours, it spreads
    the hints as colorizing would, and keeps the gradient. Training through it teaches the hint
    layers what the spreading does not already do, instead of a weaker copy of it."""

    def __init__(self, l_norm: torch.Tensor, points: list, grid_hw):
        from .pipeline import Colorizer
        L = (l_norm[:, 0] * lab.L_NORM + lab.L_CENT).numpy()
        self.plans = [Colorizer._spread_plan(L[i], pts, grid_hw) if pts else None
                      for i, pts in enumerate(points)]

    def __call__(self, ab_hat: torch.Tensor) -> torch.Tensor:
        from .hints import spread_hints
        return torch.stack([ab_hat[i] if plan is None else spread_hints(ab_hat[i], None, plan[0], weights=plan[2])
                            for i, plan in enumerate(self.plans)])


class Adversary:
    """Adversarial fine-tuning (--adv-weight): a patch discriminator
    (colorizer/models/patch_discriminator.py) learns to tell a crop's true colours from the ones
    the colorizer decodes for it, and the colorizer is rewarded for colours the discriminator takes
    for real (hinge losses). Both see the lightness with the colours, at the network's output grid.
    For the first `warmup` steps only the discriminator learns from it, so that its first verdicts
    do not push the colorizer at random."""

    def __init__(self, weight: float, lr: float = 1e-4, channels: int = 64, warmup: int = 0):
        from .models.patch_discriminator import PatchDiscriminator
        self.weight, self.warmup = weight, warmup
        self.disc = PatchDiscriminator(channels)
        self.opt = torch.optim.Adam(self.disc.parameters(), lr=lr, betas=(0.5, 0.999))
        self.steps = 0
        self.reset_stats()

    def reset_stats(self):
        self.stats = {"n": 0, "d_loss": 0.0, "g_adv": 0.0, "real_ok": 0.0, "fake_ok": 0.0}

    @staticmethod
    def pair(l_norm: torch.Tensor, ab: torch.Tensor, ab_hat: torch.Tensor):
        """(true, decoded) discriminator inputs: L and ab, normalized, at the grid of ab_hat."""
        grid = ab_hat.shape[-2:]
        l_small = F.adaptive_avg_pool2d(l_norm, grid)
        real = torch.cat([l_small, F.adaptive_avg_pool2d(ab, grid) / lab.AB_NORM], 1)
        return real, torch.cat([l_small, ab_hat / lab.AB_NORM], 1)

    def generator_loss(self, fake: torch.Tensor):
        """weight x the colorizer's hinge loss on its decoded colours; None during the warm-up."""
        if self.steps < self.warmup:
            return None
        for q in self.disc.parameters():
            q.requires_grad_(False)
        try:
            g = -self.disc(fake).mean()
        finally:
            for q in self.disc.parameters():
                q.requires_grad_(True)
        self.stats["g_adv"] += float(g.detach())
        return self.weight * g

    def step(self, real: torch.Tensor, fake: torch.Tensor) -> float:
        """One discriminator update on a batch of true and decoded colours."""
        s_real, s_fake = self.disc(real), self.disc(fake.detach())
        d_loss = F.relu(1 - s_real).mean() + F.relu(1 + s_fake).mean()
        self.opt.zero_grad(set_to_none=True)
        d_loss.backward()
        self.opt.step()
        self.steps += 1
        st = self.stats
        st["n"] += 1
        st["d_loss"] += float(d_loss.detach())
        st["real_ok"] += float((s_real.detach() > 0).float().mean())
        st["fake_ok"] += float((s_fake.detach() < 0).float().mean())
        return float(d_loss.detach())

    def summary(self) -> dict:
        """Means since the last reset: discriminator loss, the colorizer's adversarial loss, and the
        share of true / decoded patches the discriminator judged right."""
        n = max(1, self.stats["n"])
        return {"d_loss": round(self.stats["d_loss"] / n, 4), "g_adv": round(self.stats["g_adv"] / n, 4),
                "d_real_ok": round(self.stats["real_ok"] / n, 3), "d_fake_ok": round(self.stats["fake_ok"] / n, 3)}

    def state_dict(self) -> dict:
        return {"disc": self.disc.state_dict(), "opt": self.opt.state_dict(), "steps": self.steps}

    def load_state_dict(self, d: dict) -> None:
        self.disc.load_state_dict(d["disc"])
        self.opt.load_state_dict(d["opt"])
        self.steps = d["steps"]


# --- configuration and the loop ---------------------------------------------------------------

@dataclass
class TrainConfig:
    data: list
    out: str
    data_weights: list | None = None
    val: list = field(default_factory=list)
    arch: str = "backbone_unet"
    encoder: str = "efficientnet_lite0"
    head: str = "classification"
    regression_loss: str = "huber"
    decoder_channels: list = field(default_factory=lambda: [128, 64, 48])
    out_stride: int = 4
    pretrained: bool = True
    pretrained_file: str | None = None
    crop_size: int = 128
    batch_size: int = 32
    epoch_size: int = 4000
    epochs: int = 100
    lr: float = 5e-4
    weight_decay: float = 0.0
    rebalance_lambda: float = 0.5
    bins_file: str | None = None
    temperature: float = DEFAULT_TEMPERATURE
    correction: float = 0.0
    gain: float = 1.0
    patience: int = 6
    lr_patience: int = 2
    max_minutes: float | None = None
    val_images: int = 300
    threads: int | None = None
    workers: int = 1
    seed: int = 0
    resume: bool = False
    log: str | None = None
    input_size: int = 256
    hints: bool = False
    hint_p_none: float = 0.3
    hint_mean_count: float = 8.0
    init: str | None = None
    decode_weight: float = 0.0
    hint_lr_mult: float = 1.0
    hint_branch: int = 0
    train_only: str = "all"
    through_spread: bool = False
    ce_weight: float = 1.0
    decode_loss: str = "mse"
    keep_epochs: bool = False
    adv_weight: float = 0.0
    adv_warmup: int = 100
    disc_lr: float = 1e-4
    disc_channels: int = 64
    scene_context: int = 0
    device: str = "cpu"
    precision: str = "auto"
    channels_last: bool = True
    time_budget: float | None = None
    max_steps: int | None = None
    checkpoint_minutes: float = 5.0
    cache_dir: str | None = None
    pack: str | None = None
    official_file: str | None = None
    latent_dim: int = 8
    kl_weight: float = 1.0

    def check(self) -> None:
        """Options that cannot go together, or values out of range: a ValueError that says which."""
        if self.head not in HEADS:
            raise ValueError(f"unknown head {self.head!r}: choose one of {', '.join(HEADS)}")
        if self.train_only not in TRAIN_ONLY:
            raise ValueError(f"--train-only must be one of {', '.join(TRAIN_ONLY)}, not {self.train_only!r}")
        if self.hint_branch and not self.hints:
            raise ValueError("--hint-branch needs --hints")
        if self.train_only == "hint-branch" and not self.hint_branch:
            raise ValueError("--train-only hint-branch needs --hint-branch")
        if self.through_spread and not (self.hints and self.head == "classification" and self.decode_weight):
            raise ValueError("--through-spread needs --hints, the classification head and --decode-weight")
        if self.adv_weight and self.train_only != "all":
            raise ValueError("--adv-weight trains the whole network: leave out --train-only")
        if self.adv_weight < 0:
            raise ValueError("--adv-weight must be 0 or more")
        if self.adv_weight and self.crop_size < 12 * self.out_stride:
            raise ValueError(f"--adv-weight needs crops of at least {12 * self.out_stride} px (the patch "
                             f"discriminator sees the {self.out_stride}x smaller output grid), not {self.crop_size}")
        if self.adv_weight and int(os.environ.get("WORLD_SIZE", "1")) > 1:
            raise ValueError("--adv-weight is not supported under torchrun: run it in one process")
        if not self.data and not self.pack:
            raise ValueError("--data needs at least one folder of photos (or --pack a training pack)")
        if self.data_weights and self.data:
            folder_shares(self.data, self.data_weights)
        if self.precision not in PRECISIONS:
            raise ValueError(f"--precision must be one of {', '.join(PRECISIONS)}, not {self.precision!r}")
        for name in ("time_budget", "max_minutes"):
            v = getattr(self, name)
            if v is not None and not (math.isfinite(v) and v > 0):
                raise ValueError(f"--{name.replace('_', '-')} must be a positive number of minutes, not {v}")
        if self.max_steps is not None and self.max_steps < 1:
            raise ValueError("--max-steps must be 1 or more")
        if not (math.isfinite(self.checkpoint_minutes) and self.checkpoint_minutes >= 0):
            raise ValueError("--checkpoint-minutes must be 0 (only at epoch ends) or more")
        world = int(os.environ.get("WORLD_SIZE", "1"))
        if self.batch_size < 1 or self.epoch_size < self.batch_size * world:
            raise ValueError(f"--epoch-size ({self.epoch_size}) must hold at least one batch of "
                             f"--batch-size ({self.batch_size})" + (f" x {world} processes" if world > 1 else ""))
        if self.scene_context and self.arch not in ("backbone_unet", "unet", "vae_gan"):
            raise ValueError("--scene-context needs --arch backbone_unet, unet or vae_gan")
        if self.arch == "vae_gan":
            if self.latent_dim < 1:
                raise ValueError("--latent-dim must be 1 or more")
            if not (math.isfinite(self.kl_weight) and self.kl_weight >= 0):
                raise ValueError("--kl-weight must be 0 or more")
            if self.train_only != "all" or self.through_spread:
                raise ValueError("--arch vae_gan trains the whole network: leave out --train-only and --through-spread")
        if self.arch in OFFICIAL_ARCHS:
            if self.head != OFFICIAL_ARCHS[self.arch]:
                raise ValueError(f"--arch {self.arch} has a {OFFICIAL_ARCHS[self.arch]} output: "
                                 f"use --head {OFFICIAL_ARCHS[self.arch]}")
            if self.arch == "eccv16" and self.hints:
                raise ValueError("--arch eccv16 takes no hints (siggraph17 does)")
            if self.hint_branch or self.scene_context:
                raise ValueError(f"--arch {self.arch} is the paper's network as released: "
                                 "--hint-branch and --scene-context are for our U-Nets")
            if self.arch == "eccv16" and (self.correction or self.gain != 1.0 or self.bins_file):
                raise ValueError("--arch eccv16 decodes with its own bins and --temperature only: "
                                 "leave out --correction, --gain and --bins-file")
        if self.init == "official" and self.arch not in OFFICIAL_ARCHS:
            raise ValueError(f"--init official needs --arch {' or '.join(OFFICIAL_ARCHS)}")
        if self.official_file and self.init != "official":
            raise ValueError("--official-file goes with --init official")


PRECISIONS = ("auto", "fp32", "bf16", "fp16")
# Zhang et al.'s networks, trainable from their official weights (--init official): each has its
# own output (ECCV16: logits over its 313 bins; SIGGRAPH17: ab / 110, with hint inputs)
OFFICIAL_ARCHS = {"eccv16": "classification", "siggraph17": "regression"}


TRAIN_ONLY = ("all", "hint-branch")


def model_args_for(cfg: TrainConfig, n_bins: int) -> dict:
    args = {"decoder_channels": list(cfg.decoder_channels), "head": cfg.head,
            "out_stride": cfg.out_stride, "n_bins": n_bins, "temperature": cfg.temperature,
            "correction": cfg.correction, "gain": cfg.gain}
    if cfg.hints:
        args["hints"] = True
    if cfg.hint_branch:
        args["hint_branch"] = int(cfg.hint_branch)
    if cfg.scene_context:
        args["scene_context"] = int(cfg.scene_context)
    if cfg.arch == "eccv16":  # the paper's network as released; it decodes at --temperature
        return {"temperature": cfg.temperature}
    if cfg.arch in OFFICIAL_ARCHS:
        return {}
    if cfg.arch in ("backbone_unet", "vae_gan"):
        args["encoder"] = cfg.encoder
        if cfg.arch == "vae_gan":
            args["latent"] = int(cfg.latent_dim)
    elif cfg.arch != "unet":
        raise ValueError(f"architecture {cfg.arch!r} is not trainable here: use unet, backbone_unet, vae_gan, "
                         f"{' or '.join(OFFICIAL_ARCHS)}")
    return args


class _Log:
    def __init__(self, path):
        self.path = path
        Path(path).parent.mkdir(parents=True, exist_ok=True)

    def __call__(self, msg: str):
        line = f"{time.strftime('%Y-%m-%d %H:%M:%S')} {msg}"
        with open(self.path, "a") as f:
            f.write(line + "\n")
        print(line, file=sys.stderr, flush=True)


@dataclass
class Runtime:
    """Where this process trains: the device, the precision of its forward passes, and its place
    among the processes of a distributed run (torchrun sets RANK, WORLD_SIZE and LOCAL_RANK)."""
    device: torch.device
    dtype: torch.dtype | None  # autocast dtype, None for float32
    rank: int = 0
    world: int = 1

    @property
    def main(self) -> bool:
        return self.rank == 0

    def autocast(self):
        return torch.autocast(self.device.type, dtype=self.dtype or torch.float32, enabled=self.dtype is not None)

    def flags(self, values: list[bool]) -> list[bool]:
        """Each flag true on every process when it is true on any (stops decided together)."""
        if self.world == 1:
            return list(values)
        t = torch.tensor([1.0 if v else 0.0 for v in values], device=self.device)
        torch.distributed.all_reduce(t, op=torch.distributed.ReduceOp.MAX)
        return [bool(v > 0) for v in t.tolist()]

    def mean(self, value: float) -> float:
        """The mean of every process's value (the loss of the whole global batch)."""
        if self.world == 1:
            return value
        t = torch.tensor([value], dtype=torch.float64, device=self.device)
        torch.distributed.all_reduce(t)
        return float(t.item()) / self.world

    def broadcast(self, value: float) -> float:
        """rank 0's value, on every process."""
        if self.world == 1:
            return value
        t = torch.tensor([value], dtype=torch.float64, device=self.device)
        torch.distributed.broadcast(t, 0)
        return float(t.item())


def bf16_supported() -> bool:
    """Whether this CPU runs bfloat16 matrix kernels natively (AVX-512 BF16 / AMX)."""
    try:
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except Exception:
        return False


def make_runtime(cfg: TrainConfig) -> Runtime:
    world = int(os.environ.get("WORLD_SIZE", "1"))
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    want = cfg.device
    if want == "auto":
        want = "cuda" if torch.cuda.is_available() else "cpu"
    if want.startswith("cuda"):
        if not torch.cuda.is_available():
            raise ValueError("--device cuda: no CUDA GPU is visible to PyTorch here; use --device cpu")
        device = torch.device("cuda", local_rank if world > 1 else (torch.device(want).index or 0))
        torch.cuda.set_device(device)
    elif want == "cpu":
        device = torch.device("cpu")
    else:
        raise ValueError(f"--device must be auto, cpu or cuda, not {cfg.device!r}")
    precision = cfg.precision
    if precision == "auto":
        if device.type == "cuda":
            precision = "bf16" if torch.cuda.is_bf16_supported() else "fp16"
        else:
            precision = "bf16" if bf16_supported() else "fp32"
    if precision == "fp16" and device.type != "cuda":
        raise ValueError("--precision fp16 is for GPUs; on a CPU use bf16 or fp32")
    dtype = {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}[precision]
    rank = 0
    if world > 1:
        torch.distributed.init_process_group("nccl" if device.type == "cuda" else "gloo")
        rank = torch.distributed.get_rank()
    return Runtime(device, dtype, rank, world)


class _StopSignal:
    """SIGTERM / SIGINT ask the loop to checkpoint and stop after the current step."""

    def __init__(self):
        self.asked = ""
        self._old = {}
        for sig in (signal.SIGTERM, signal.SIGINT):
            try:
                self._old[sig] = signal.signal(sig, self._handle)
            except ValueError:  # not the main thread
                pass

    def _handle(self, signum, frame):
        if self.asked:  # a second signal: the default action (a stuck run can still be stopped)
            self.restore()
            signal.raise_signal(signum)
            return
        self.asked = signal.Signals(signum).name

    def restore(self):
        for sig, old in self._old.items():
            signal.signal(sig, old)


def _quiet_worker(worker_id: int) -> None:
    """Data workers leave SIGTERM / SIGINT to the training process, which checkpoints and stops
    them (a signal to the whole process group must not kill a worker mid-batch)."""
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def _stop_reason(flags: list[bool], stop: _StopSignal, cfg: TrainConfig) -> str:
    if flags[0]:
        return f"stopped by {stop.asked or 'a signal to another process of the run'}"
    if flags[1]:
        return f"time budget of {cfg.time_budget} minutes reached"
    return f"--max-steps {cfg.max_steps} taken"


def _plan_signature(cfg: TrainConfig, rt: "Runtime", cache_key) -> dict:
    """What a step of the crop plan depends on: a run resumed mid-epoch must keep it."""
    return {"seed": cfg.seed, "global_batch": cfg.batch_size * rt.world, "epoch_size": cfg.epoch_size,
            "data_weights": cfg.data_weights, "photos": cache_key}


class _Photos:
    """The training photos as a sequence: the cache's photos, less those held out for validation."""

    def __init__(self, cache: PhotoCache, ids: list[int]):
        self.cache, self.ids = cache, ids

    def __len__(self):
        return len(self.ids)

    def __getitem__(self, i):
        return self.cache.photo(self.ids[i])

    __call__ = __getitem__


def _training_photos(cfg: TrainConfig, log, rt: Runtime | None = None):
    """(training photos, each one's folder index, folder shares or None, validation photos)."""
    t0 = time.time()
    if cfg.pack:
        cache = PhotoCache(cfg.pack)
        if not cfg.data:
            cfg.data = cache.folders
        elif len(cfg.data) != len(cache.folders):
            raise ValueError(f"--data names {len(cfg.data)} folders, the pack {cfg.pack} holds "
                             f"{len(cache.folders)}: leave out --data with --pack")
        log(f"training pack {cfg.pack}: {len(cache)} photos of {len(cache.folders)} folders")
    else:
        build = lambda: PhotoCache.build(cfg.data, short_side=max(256, cfg.crop_size),  # noqa: E731
                                         cache_dir=cfg.cache_dir, log=log)
        if rt is not None and rt.world > 1:  # rank 0 decodes; the others open what it wrote
            if rt.main:
                build()
            torch.distributed.barrier()
        cache = build()
    shares = folder_shares(cfg.data, cfg.data_weights) if cfg.data_weights else None
    folder_of = cache.folder_of
    if shares:
        counts = np.bincount(folder_of, minlength=len(shares)) if folder_of else np.zeros(len(shares))
        for i, folder in enumerate(cfg.data):
            if shares[i] and not counts[i]:
                raise ValueError(f"no images found under {folder}, which --data-weights gives "
                                 f"{shares[i]:.0%} of the crops")
    if not len(cache):
        raise ValueError(f"no images found under {', '.join(map(str, cfg.data))}")
    ids = list(range(len(cache)))
    val_paths = find_images(cfg.val) if cfg.val else []
    if val_paths:
        rng = random.Random(1234)
        val_paths = sorted(rng.sample(val_paths, min(cfg.val_images, len(val_paths))))
        val_images = load_images(val_paths, short_side=256)
    else:  # hold out a slice of the training photos
        n_val = max(1, min(cfg.val_images, len(ids) // 10))
        rng = random.Random(1234)
        rng.shuffle(ids)
        val_images = [np.array(cache.photo(i)) for i in ids[:n_val]]
        ids = ids[n_val:]
    if shares:
        log("share of the crops per folder: " + ", ".join(
            f"{folder} {share:.0%}" for folder, share in zip(cfg.data, shares)))
    log(f"loaded {len(ids)} training and {len(val_images)} validation photos in {time.time() - t0:.0f}s")
    return _Photos(cache, ids), [folder_of[i] for i in ids], shares, val_images


def _optimizer(cfg: TrainConfig, model):
    frozen = cfg.train_only == "hint-branch"
    if frozen:
        # only the hint branch learns; the rest stays exactly as it was (and in eval mode, so
        # batch norm keeps its statistics): photos without hints are colorized as before
        for n, p in model.named_parameters():
            p.requires_grad_(n.startswith("hint_branch."))
        groups = [{"params": [p for p in model.parameters() if p.requires_grad]}]
    else:
        # the hint layers start at zero inside a trained network: they may learn at hint_lr_mult x the
        # rate (raising it to 3x or 30x hurt the photos without hints in our runs: docs/results/runs.md)
        hint_params = [p for n, p in model.named_parameters()
                       if n.startswith(("hint_stem.", "hint_mix.", "hint_branch."))]
        ids = {id(p) for p in hint_params}
        groups = [{"params": [p for p in model.parameters() if id(p) not in ids]}]
        if hint_params:
            groups.append({"params": hint_params, "lr": cfg.lr * cfg.hint_lr_mult})
    opt = torch.optim.Adam(groups, lr=cfg.lr, weight_decay=cfg.weight_decay)
    sched = torch.optim.lr_scheduler.ReduceLROnPlateau(opt, factor=0.5, patience=cfg.lr_patience)
    return opt, sched


def _validation(cfg: TrainConfig, model, val_images, frozen: bool):
    """Fixed validation batches (and, for a hint branch trained alone, fixed hints)."""
    val_crops = center_crops(val_images, model.input_multiple)
    val_batches = [lab_batch(np.stack(val_crops[i:i + 16])) for i in range(0, len(val_crops), 16)
                   if len({c.shape for c in val_crops[i:i + 16]}) == 1]
    # a hint branch trained alone is validated with hints (fixed ones, the same every epoch): it
    # changes nothing without them; the whole network is validated without hints, as before
    val_rng = random.Random(4321)
    val_hints, val_spread = [None] * len(val_batches), [None] * len(val_batches)
    for i, (l_norm, ab) in enumerate(val_batches if frozen else []):
        pts = []
        val_hints[i] = sample_hints(ab, 0.0, cfg.hint_mean_count, generator=val_rng, points=pts)
        if cfg.through_spread:
            grid = (l_norm.shape[-2] // cfg.out_stride, l_norm.shape[-1] // cfg.out_stride)
            val_spread[i] = SpreadThrough(l_norm, pts, grid)
    return list(zip(val_batches, val_hints, val_spread))


def _resume_state(ck: dict) -> dict:
    """A resume file's loop state; files written before mid-epoch checkpoints start at step 0."""
    state = dict(ck["state"])
    state.setdefault("step", 0)
    state.setdefault("epoch_seen", 0)
    state.setdefault("run_loss", 0.0)
    return state


def weights_digest(model) -> str:
    """A short hash of a model's parameters (the same on every rank of a run that trains one
    shared model; batch-norm statistics are each rank's own until rank 0's are saved)."""
    import hashlib
    h = hashlib.sha256()
    for k, v in model.named_parameters():
        h.update(k.encode())
        h.update(v.detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()[:16]


def train(cfg: TrainConfig) -> dict:
    from tqdm import tqdm

    cfg.check()
    rt = make_runtime(cfg)
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    random.seed(cfg.seed)
    np.random.seed(cfg.seed)
    torch.manual_seed(cfg.seed)
    out = Path(cfg.out)
    resume_path = out.with_name(out.name + ".resume")
    log = _Log(cfg.log or str(out.with_suffix(".log"))) if rt.main else (lambda msg: None)
    log(f"config {json.dumps(asdict(cfg))}")
    log(f"device {rt.device}, precision {rt.dtype or 'float32'}, {rt.world} process(es), "
        f"{torch.get_num_threads()} threads each")

    # 1. photos (decoded once into the cache) and the model
    images, folder_of, shares, val_images = _training_photos(cfg, log, rt)
    bins = np.load(cfg.bins_file or AB_BINS_313).astype(np.float32)
    model_args = model_args_for(cfg, len(bins))
    model = build_model(cfg.arch, **model_args)
    frozen = cfg.train_only == "hint-branch"

    # 2. the starting point: a resume file, another checkpoint, official weights or ImageNet weights
    state = {"epoch": 0, "step": 0, "epoch_seen": 0, "run_loss": 0.0, "best_loss": float("inf"),
             "best_epoch": 0, "bad_epochs": 0, "elapsed_s": 0.0, "images_seen": 0, "history": []}
    ck = None
    if cfg.resume and resume_path.exists():
        ck = torch.load(resume_path, map_location="cpu", weights_only=False)
        if ck.get("arch") != cfg.arch or ck.get("model_args") != model_args:
            raise ValueError(
                f"{resume_path} was written by a run with another model ({ck.get('arch')} "
                f"{ck.get('model_args')}); resume with the same options, or delete it to start afresh")
        load_state_dict_strict(model, ck["model"], str(resume_path))
    elif cfg.init == "official":
        init_official(model, cfg.arch, cfg.official_file)
        log(f"initialized from the official {cfg.arch} weights"
            + (f" in {cfg.official_file}" if cfg.official_file else ""))
    elif cfg.init:
        init_from(model, cfg.init)
        log(f"initialized from {cfg.init}")
    elif cfg.pretrained and cfg.arch in ("backbone_unet", "vae_gan"):
        model.load_pretrained_encoder(cfg.pretrained_file)
        log(f"encoder {cfg.encoder} initialized from ImageNet weights")

    # 3. ab bins and class rebalancing (classification), stored with the model, and the optimizer
    class_weights = None
    if cfg.head == "classification":
        if cfg.arch == "eccv16":  # its bins live in its state dict (model_out), in its own order
            if not model.bins.abs().sum():
                model.set_bins(bins)
            bins = model.bins.numpy().astype(np.float32)
        _, w = rebalance_weights(images, bins, lam=cfg.rebalance_lambda)
        class_weights = torch.from_numpy(w)
        if hasattr(model, "head") and ck is None and not frozen:
            # decode with these photos' rebalancing, as the loss does (a frozen network stays as it was)
            model.head.bins.copy_(torch.from_numpy(bins))
            model.head.log_class_weights.copy_(class_weights.log())
        log(f"{len(bins)} ab bins; rebalancing weights from {min(3000, len(images))} photos: "
            f"min {w.min():.2f} max {w.max():.2f}")
    if cfg.arch == "siggraph17":  # its colour-suggestion head is not what the regression loss trains
        model.model_class.requires_grad_(False)
    model.to(rt.device)
    if cfg.channels_last:
        model.to(memory_format=torch.channels_last)
    opt, sched = _optimizer(cfg, model)  # after the move: its state lives beside the parameters
    scaler = torch.amp.GradScaler("cuda") if rt.dtype == torch.float16 else None
    adversary = Adversary(cfg.adv_weight, cfg.disc_lr, cfg.disc_channels, cfg.adv_warmup) if cfg.adv_weight else None
    plan_signature = _plan_signature(cfg, rt, images.cache.meta.get("key") or
                                     f"{images.cache.root} {images.cache.meta.get('bytes')}")
    if ck is not None:
        old_plan = ck.get("plan")
        if old_plan and ck["state"].get("step") and old_plan != plan_signature:
            changed = ", ".join(f"{k} {old_plan.get(k)!r} -> {v!r}" for k, v in plan_signature.items()
                                if old_plan.get(k) != v)
            raise ValueError(f"{resume_path} stopped in the middle of an epoch whose crops depend on "
                             f"what changed here ({changed}): resume with the same --seed, --batch-size "
                             f"(and number of processes), --epoch-size, --data-weights and photos")
        opt.load_state_dict(ck["optimizer"])
        sched.load_state_dict(ck["scheduler"])
        if scaler is not None and ck.get("scaler"):
            scaler.load_state_dict(ck["scaler"])
        state = _resume_state(ck)
        if adversary is not None and ck.get("adversary"):
            adversary.load_state_dict(ck["adversary"])
        if ck.get("rng"):
            random.setstate(ck["rng"]["python"])
            np.random.set_state(ck["rng"]["numpy"])
            torch.set_rng_state(ck["rng"]["torch"])
        log(f"resumed from {resume_path} at epoch {state['epoch']} step {state['step']} "
            f"(best val loss {state['best_loss']:.4f})")
    net = model
    vae = cfg.arch == "vae_gan"
    if vae and rt.world > 1:
        raise ValueError("--arch vae_gan runs in one process (not under torchrun)")
    if rt.world > 1:
        net = torch.nn.parallel.DistributedDataParallel(
            model, device_ids=[rt.device.index] if rt.device.type == "cuda" else None)
    bins_t = torch.from_numpy(bins).to(rt.device)
    loss_fn = ColorLoss(cfg.head, cfg.regression_loss, bins_t,
                        class_weights.to(rt.device) if class_weights is not None else None,
                        cfg.decode_weight, cfg.temperature, cfg.correction, cfg.gain, cfg.ce_weight,
                        cfg.decode_loss)
    validation = _validation(cfg, model, val_images, frozen)
    hint_sampling = None
    if cfg.hints:
        hint_sampling = HintSampling(0.0 if frozen else cfg.hint_p_none, cfg.hint_mean_count)

    def to_dev(t):
        t = t.to(rt.device, non_blocking=True)
        return t.contiguous(memory_format=torch.channels_last) if cfg.channels_last and t.dim() == 4 else t

    def evaluate() -> float:
        """Validation loss in float32 (rank 0 computes it; every rank gets it)."""
        val = float("nan")
        if rt.main:
            model.eval()
            tot, n = 0.0, 0
            with torch.inference_mode():
                for (l_norm, ab), hints, spread in validation:
                    l_norm, ab = to_dev(l_norm), ab.to(rt.device)
                    pred = model(l_norm) if hints is None else model(l_norm, to_dev(hints))
                    tot += float(loss_fn(pred.float(), ab, spread)) * len(l_norm)
                    n += len(l_norm)
            val = tot / max(1, n)
        model.train(not frozen)
        return rt.broadcast(val)

    def meta_for(epoch: int) -> dict:
        return {
            "trained_on": [str(d) for d in cfg.data] if not cfg.pack else [f"pack {cfg.pack}"],
            "validated_on": [str(d) for d in cfg.val],
            "train_photos": len(images), "epochs": epoch, "images_seen": state["images_seen"],
            "train_minutes": round(state["elapsed_s"] / 60, 1),
            "input_size": cfg.input_size, "crop_size": cfg.crop_size, "head": cfg.head,
            "config": asdict(cfg),
        }

    def save_resume():
        if not rt.main:
            return
        torch.save({"model": {k: v.cpu() for k, v in model.state_dict().items()},
                    "optimizer": opt.state_dict(), "scheduler": sched.state_dict(), "state": state,
                    "model_args": model_args, "arch": cfg.arch,
                    "adversary": adversary.state_dict() if adversary else None,
                    "scaler": scaler.state_dict() if scaler is not None else None,
                    "plan": plan_signature,
                    "rng": {"python": random.getstate(), "numpy": np.random.get_state(),
                            "torch": torch.get_rng_state()}},
                   resume_path.with_name(resume_path.name + ".tmp"))
        os.replace(resume_path.with_name(resume_path.name + ".tmp"), resume_path)

    # 4. the loop: epochs of --epoch-size crops, validated, checkpointed; resumable at any step
    budget_s = cfg.max_minutes * 60 if cfg.max_minutes else None  # the whole run's time
    session_s = cfg.time_budget * 60 if cfg.time_budget else None  # this invocation's time
    t_start = time.time()
    run_start = t_start - state["elapsed_s"]
    last_ckpt = t_start
    stop = _StopSignal()
    stopped = ""
    steps_now = 0  # steps taken by this invocation
    model.train(not frozen)
    log(f"training from epoch {state['epoch'] + 1} step {state['step']}")
    try:
        while state["epoch"] < cfg.epochs:
            epoch = state["epoch"] + 1
            plan = epoch_plan(cfg.seed, epoch, folder_of, shares, cfg.epoch_size)
            builder = BatchBuilder(images, plan, cfg.seed, epoch, cfg.crop_size, cfg.batch_size,
                                   hint_sampling, rt.rank, rt.world)
            loader = torch.utils.data.DataLoader(
                builder, batch_size=None, sampler=range(state["step"], len(builder)),
                num_workers=cfg.workers, prefetch_factor=4 if cfg.workers else None,
                worker_init_fn=_quiet_worker if cfg.workers else None,
                generator=torch.Generator().manual_seed(cfg.seed * 1000 + epoch))
            bar = tqdm(loader, desc=f"epoch {epoch}", unit="batch", leave=False, dynamic_ncols=True,
                       disable=None, initial=state["step"], total=len(builder))
            t_ep, seen_now = time.time(), 0
            flags = [False] * 4  # signal, --time-budget, --max-steps, --max-minutes
            for l_norm, ab, hints, points in bar:
                spread = SpreadThrough(l_norm, points, (l_norm.shape[-2] // cfg.out_stride,
                                                        l_norm.shape[-1] // cfg.out_stride)) if cfg.through_spread else None
                l_norm, ab = to_dev(l_norm), ab.to(rt.device)
                prior_pred = None
                with rt.autocast():
                    if vae:  # a posterior sample for the reconstruction, a prior one for the adversary
                        vout = model.training_forward(l_norm, ab, to_dev(hints) if cfg.hints else None,
                                                      prior=adversary is not None)
                        pred, prior_pred = vout.out, vout.prior_out
                    else:
                        pred = net(l_norm, to_dev(hints)) if cfg.hints else net(l_norm)
                loss = loss_fn(pred.float(), ab, spread)
                if vae:  # KL per output pixel: kl_weight 1 weighs it as the ELBO does a per-pixel likelihood
                    kl = vout.kl.float().mean()
                    loss = loss + cfg.kl_weight * kl / (pred.shape[-2] * pred.shape[-1])
                    kv = float(kl.detach())
                    state["run_kl"] = 0.98 * state.get("run_kl", kv) + 0.02 * kv
                if adversary is not None:
                    judged = pred if prior_pred is None else prior_pred
                    real, fake = adversary.pair(l_norm.float(), ab, loss_fn.decode(judged.float()))
                    g_adv = adversary.generator_loss(fake)
                    if g_adv is not None:
                        loss = loss + g_adv
                opt.zero_grad(set_to_none=True)
                if scaler is not None:
                    scaler.scale(loss).backward()
                    scaler.step(opt)
                    scaler.update()
                else:
                    loss.backward()
                    opt.step()
                if adversary is not None:
                    adversary.step(real, fake)
                n = len(l_norm) * rt.world
                seen_now += n
                steps_now += 1
                state["step"] += 1
                state["epoch_seen"] += n
                lv = rt.mean(float(loss.detach()))
                state["run_loss"] = 0.98 * state["run_loss"] + 0.02 * lv if state["epoch_seen"] > n else lv
                bar.set_postfix(loss=f"{state['run_loss']:.4f}", img_s=f"{seen_now / (time.time() - t_ep):.1f}")
                now = time.time()
                state["elapsed_s"] = now - run_start
                flags = rt.flags([bool(stop.asked), bool(session_s and now - t_start > session_s),
                                  bool(cfg.max_steps and steps_now >= cfg.max_steps),
                                  bool(budget_s and now - run_start > budget_s)])
                if any(flags):
                    break
                if cfg.checkpoint_minutes and now - last_ckpt > cfg.checkpoint_minutes * 60:
                    save_resume()
                    last_ckpt = now
            bar.close()
            pause, out_of_time = any(flags[:3]), flags[3] and not any(flags[:3])
            if pause:
                save_resume()  # first: validating may take longer than a kill's grace period
                if state["step"] < len(builder):
                    stopped = _stop_reason(flags, stop, cfg) + \
                        f" at epoch {epoch} step {state['step']}; `--resume` continues from there"
                    break
            val_loss = evaluate()
            sched.step(val_loss)
            rec = {"epoch": epoch, "train_loss": round(state["run_loss"], 5), "val_loss": round(val_loss, 5),
                   "lr": opt.param_groups[0]["lr"],
                   "img_per_s": round(seen_now / max(1e-9, time.time() - t_ep), 1),
                   "elapsed_min": round(state["elapsed_s"] / 60, 1)}
            if vae:
                rec["kl"] = round(state.get("run_kl", 0.0), 3)
            state.update(epoch=epoch, step=0, images_seen=state["images_seen"] + state["epoch_seen"],
                         epoch_seen=0, elapsed_s=time.time() - run_start)
            improved = val_loss < state["best_loss"] - 1e-5
            if adversary is not None:
                rec.update(adversary.summary())
                adversary.reset_stats()
            state["history"].append(rec)
            meta = {**meta_for(epoch), "val_loss": round(val_loss, 5)}
            if improved:
                state["best_loss"], state["best_epoch"], state["bad_epochs"] = val_loss, epoch, 0
            else:
                state["bad_epochs"] += 1
            if rt.main:
                if improved:
                    save_checkpoint(out, model, cfg.arch, model_args, meta, half=True)
                if adversary is not None or cfg.keep_epochs:
                    # the validation loss does not measure what the discriminator adds, nor how a changed
                    # mix of training photos does on other photos: every epoch is kept, to be chosen by
                    # evaluation (colorfulness, realism score, the photos it is meant for) as well
                    save_checkpoint(epoch_checkpoint(out, epoch), model, cfg.arch, model_args, meta, half=True)
            save_resume()
            last_ckpt = time.time()
            log(f"epoch {epoch} " + " ".join(f"{k}={v}" for k, v in rec.items() if k != "epoch")
                + (" best" if improved else ""))
            if not pause and rt.flags([bool(stop.asked)])[0]:  # a signal during validation or saving
                pause, flags = True, [True, False, False, False]
            if pause:
                stopped = _stop_reason(flags, stop, cfg) + " at the end of an epoch; `--resume` continues from there"
                break
            if out_of_time:
                stopped = f"time budget of {cfg.max_minutes} minutes reached"
                break
            if state["bad_epochs"] >= cfg.patience:
                stopped = f"early stop: no improvement for {cfg.patience} epochs"
                break
    finally:
        stop.restore()
        if rt.world > 1:
            torch.distributed.destroy_process_group()
    log(f"done: {stopped or 'all epochs'}; best epoch {state['best_epoch']} "
        f"val loss {state['best_loss']:.4f}; checkpoint {out}")
    state["stopped"] = stopped
    state["weights_digest"] = weights_digest(model)
    print(f"rank {rt.rank}: weights digest {state['weights_digest']}", file=sys.stderr, flush=True)
    return state


def epoch_checkpoint(out: Path, epoch: int) -> Path:
    """Where a run that keeps each epoch (--keep-epochs, --adv-weight) puts it: NAME.pt ->
    NAME.epoch3.pt beside it."""
    return out.with_name(f"{out.stem}.epoch{epoch}{out.suffix}")


def init_official(model, arch: str, path=None) -> None:
    """Start from Zhang et al.'s released weights: the registry's file (sha256 checked) or, with
    path, a state dict in the official layout (every key and shape checked)."""
    from .registry import resolve
    from .weights import read_official_state_dict
    if path is None:
        entry = resolve(arch)
        sd = read_official_state_dict(arch, entry.path, verify=True)
    else:
        sd = read_official_state_dict(arch, path, verify=False)
    load_state_dict_strict(model, sd, f"official {arch} weights")


def init_from(model, path) -> None:
    """Start from another checkpoint's weights. The two models must match tensor for tensor,
    except the hint layers a hint model adds and the scene context (they start at zero, so the
    model starts out as the one it came from)."""
    ck = read_checkpoint(path)
    own = model.state_dict()
    src = {k: v.float() if v.is_floating_point() else v for k, v in ck["state_dict"].items()}
    new_ok = {k for k in own if k.startswith(("hint_stem.", "hint_mix.", "hint_branch.", "context.", "latent."))}
    missing = sorted(set(own) - set(src) - new_ok)
    extra = sorted(set(src) - set(own))
    bad = sorted(k for k in src if k in own and tuple(src[k].shape) != tuple(own[k].shape))
    if missing or extra or bad:
        raise ValueError(f"{path} does not fit this model: missing {missing[:5]}, unexpected {extra[:5]}, "
                         f"wrong shape {bad[:5]}")
    own.update(src)
    model.load_state_dict(own, strict=True)


def add_arguments(p) -> None:
    """The `train` command's options (used by colorizer/__main__.py)."""
    d = TrainConfig(data=[], out="")
    p.add_argument("--data", nargs="+", default=[], metavar="DIR",
                   help="folders of color photos (needed unless --pack gives them)")
    p.add_argument("--data-weights", type=float, nargs="+", default=None, metavar="W",
                   help="each --data folder's relative share of the crops (default: in proportion to its photos)")
    p.add_argument("--val", nargs="*", default=[], metavar="DIR",
                   help="validation photos (default: hold out part of --data)")
    p.add_argument("--out", required=True, help="checkpoint to write, e.g. weights/mymodel.pt")
    p.add_argument("--arch", default=d.arch, choices=["backbone_unet", "unet", "vae_gan", *OFFICIAL_ARCHS],
                   help="eccv16 / siggraph17: Zhang et al.'s networks (with --init official, fine-tuned "
                        "from their released weights; eccv16 takes --head classification, siggraph17 "
                        "--head regression)")
    p.add_argument("--encoder", default=d.encoder,
                   help="backbone_unet encoder: efficientnet_lite0/1/2, resnet18, vgg16")
    p.add_argument("--head", default=d.head, choices=list(HEADS))
    p.add_argument("--loss", dest="regression_loss", default=d.regression_loss,
                   choices=["mse", "l1", "huber"], help="loss of the regression head")
    p.add_argument("--decoder-channels", type=int, nargs="+", default=d.decoder_channels)
    p.add_argument("--no-pretrained", dest="pretrained", action="store_false",
                   help="train the encoder from scratch")
    p.add_argument("--pretrained-file", default=None,
                   help="torchvision-format ImageNet weights for a resnet18 / vgg16 encoder")
    p.add_argument("--crop-size", type=int, default=d.crop_size)
    p.add_argument("--batch-size", type=int, default=d.batch_size)
    p.add_argument("--epoch-size", type=int, default=d.epoch_size, help="random crops per epoch")
    p.add_argument("--epochs", type=int, default=d.epochs)
    p.add_argument("--lr", type=float, default=d.lr)
    p.add_argument("--rebalance-lambda", type=float, default=d.rebalance_lambda)
    p.add_argument("--bins-file", default=None, help="K x 2 .npy of ab bin centres")
    p.add_argument("--temperature", type=float, default=d.temperature,
                   help="annealed-mean temperature stored with a classification model")
    p.add_argument("--correction", type=float, default=d.correction,
                   help="share of the class rebalancing taken back when decoding (0: vivid, 1: accurate)")
    p.add_argument("--gain", type=float, default=d.gain, help="chroma gain stored with a classification model")
    p.add_argument("--patience", type=int, default=d.patience, help="early-stopping patience (epochs)")
    p.add_argument("--max-minutes", type=float, default=None, help="time budget for the whole run")
    p.add_argument("--val-images", type=int, default=d.val_images)
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--workers", type=int, default=d.workers, help="data-loading processes")
    p.add_argument("--seed", type=int, default=d.seed)
    p.add_argument("--resume", action="store_true", help="carry on from OUT.resume")
    p.add_argument("--init", default=None, metavar="CHECKPOINT",
                   help="start from this checkpoint's weights (e.g. fine-tune a plain model into a hint "
                        "model); `official` with --arch eccv16 / siggraph17: their released weights")
    p.add_argument("--official-file", default=None, metavar="FILE",
                   help="with --init official: a state dict in the official layout instead of the "
                        "registry's file (e.g. your own earlier fine-tune); its layout is checked, not its hash")
    p.add_argument("--hints", action="store_true",
                   help="train a model that takes colour hints (random hints sampled from the truth)")
    p.add_argument("--hint-p-none", type=float, default=d.hint_p_none,
                   help="share of training photos given no hints")
    p.add_argument("--hint-mean-count", type=float, default=d.hint_mean_count,
                   help="mean number of hints on a photo that gets some")
    p.add_argument("--hint-lr-mult", type=float, default=d.hint_lr_mult,
                   help="learning rate of the hint layers, as a multiple of --lr")
    p.add_argument("--hint-branch", type=int, default=d.hint_branch, metavar="CHANNELS",
                   help="add a hint propagation branch of this many channels (colorizer/models/hint_branch.py)")
    p.add_argument("--train-only", default=d.train_only, choices=TRAIN_ONLY,
                   help="hint-branch: train only the hint branch, the rest of the network frozen "
                        "(photos without hints keep their colours exactly)")
    p.add_argument("--through-spread", action="store_true",
                   help="take the decoded colours' error after hint spreading, as the app shows them "
                        "(decoded with --temperature, --correction and --gain)")
    p.add_argument("--ce-weight", type=float, default=d.ce_weight,
                   help="weight of the cross-entropy (classification head); 0 with --decode-weight: "
                        "train on the decoded colours alone")
    p.add_argument("--decode-loss", default=d.decode_loss, choices=DECODE_LOSSES,
                   help="error of the decoded colours: squared error of ab, or CIE94 Delta E")
    p.add_argument("--decode-weight", type=float, default=d.decode_weight,
                   help="weight of the squared error of the decoded colours (classification head)")
    p.add_argument("--adv-weight", type=float, default=d.adv_weight,
                   help="adversarial fine-tuning: weight of a patch discriminator's verdict on the decoded "
                        "colours (0: off); every epoch is then also kept as OUT-stem.epochN.pt")
    p.add_argument("--adv-warmup", type=int, default=d.adv_warmup,
                   help="steps the discriminator learns before the colorizer hears from it")
    p.add_argument("--disc-lr", type=float, default=d.disc_lr, help="the discriminator's learning rate")
    p.add_argument("--disc-channels", type=int, default=d.disc_channels,
                   help="width of the discriminator's first layer")
    p.add_argument("--keep-epochs", action="store_true",
                   help="also keep every epoch's weights as OUT.epochN.pt (--adv-weight always does)")
    p.add_argument("--scene-context", type=int, default=d.scene_context, metavar="HIDDEN",
                   help="add a scene-level context of this many hidden units (colorizer/models/scene_context.py)")
    p.add_argument("--latent-dim", type=int, default=d.latent_dim, metavar="Z",
                   help="--arch vae_gan: dimensions of the latent code z")
    p.add_argument("--kl-weight", type=float, default=d.kl_weight,
                   help="--arch vae_gan: weight of the KL term per output pixel (1: as in the ELBO)")
    p.add_argument("--device", default=d.device, help="cpu, cuda, cuda:N or auto")
    p.add_argument("--precision", default=d.precision, choices=PRECISIONS,
                   help="autocast precision of the forward passes (auto: bf16 on CPUs with native "
                        "bfloat16 and on GPUs that have it, else fp32 on CPUs and fp16 on GPUs)")
    p.add_argument("--no-channels-last", dest="channels_last", action="store_false",
                   help="train in the contiguous (NCHW) layout instead of channels_last")
    p.add_argument("--time-budget", type=float, default=None, metavar="MINUTES",
                   help="stop this invocation cleanly after MINUTES (resume file written; --resume continues)")
    p.add_argument("--max-steps", type=int, default=None, metavar="N",
                   help="stop this invocation cleanly after N steps (resume file written; --resume continues)")
    p.add_argument("--checkpoint-minutes", type=float, default=d.checkpoint_minutes,
                   help="write the resume file this often within an epoch (0: only at epoch ends)")
    p.add_argument("--cache-dir", default=None,
                   help="where decoded photos are cached (default: .cache/photos in the repository)")
    p.add_argument("--pack", default=None, metavar="DIR",
                   help="train on a training pack (`python -m colorizer pack`) instead of decoding --data")
    p.add_argument("--log", default=None, help="log file (default: OUT with .log)")


def main(args) -> int:
    fields = TrainConfig.__dataclass_fields__
    cfg = TrainConfig(**{k: v for k, v in vars(args).items() if k in fields})
    train(cfg)
    return 0
