"""Training losses and their facts: the ab bins of Zhang et al. (AB_BINS_313), soft-encoded
classification targets, class rebalancing, CIE94 color difference, ColorLoss (the loss on a head's
raw output), SpreadThrough (the app's hint spreading inside the loss) and Adversary (the patch
discriminator's hinge losses, with its own optimizer). Torch, numpy and Pillow only: nothing here
reads files other than the bins, or knows about the training loop.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from . import lab
from .models.heads import DEFAULT_TEMPERATURE, annealed_mean

# the 313 in-gamut ab bin centers (grid 10) of Zhang et al. 2016 (BSD-2-Clause), shipped with the package
AB_BINS_313 = Path(__file__).resolve().parent / "data" / "ab_bins_313.npy"


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
    """Per-pixel CIE94 color difference (graphic arts: K1 0.045, K2 0.015) between predicted
    and true chroma at the same lightness, differentiable: N x 2 x H x W (Lab units) -> N x H x W.
    Unlike the squared error it forgives a saturated color a chroma error in proportion to its
    chroma, as Delta E 2000 does, instead of teaching the network to mute saturated colors."""
    da, db = ab_hat[:, 0] - ab[:, 0], ab_hat[:, 1] - ab[:, 1]
    c_true = ab.pow(2).sum(1).sqrt()
    dc = c_true - (ab_hat.pow(2).sum(1) + 1e-6).sqrt()
    dh2 = (da * da + db * db - dc * dc).clamp_min(0.0)
    return ((dc / (1 + 0.045 * c_true)).pow(2) + dh2 / (1 + 0.015 * c_true).pow(2) + 1e-6).sqrt()


class ColorLoss:
    """Loss on the head's raw output: regression (mse | l1 | huber on ab / AB_NORM) or
    rebalanced soft-encoded cross-entropy over ab bins.

    decode_weight > 0 (classification) adds decode_weight x the mean squared error, in ab / AB_NORM,
    of the colors the head will actually output: the annealed mean at `temperature` of the logits
    with `correction` of the rebalancing taken back, times `gain` (and, for a hint model trained
    through the spreading, with the hints spread). ce_weight scales the cross-entropy (0: the
    decoded colors alone). The cross-entropy alone teaches a distribution;
    this term teaches the network to be only as confident as it is right, so the sharpened
    decoding stays vivid where the color is certain and turns cautious where it is not.
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
        """The colors (N x 2 x h x w, Lab units) the head outputs for these network outputs:
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
        """spread: a function applied to the decoded colors (N x 2 x h x w, Lab units) before
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
    one batch of training crops and their sampled hints: called on the decoded colors, it spreads
    the hints as colorizing would, and keeps the gradient. Training through it teaches the hint
    layers what the spreading does not already do, instead of a weaker copy of it."""

    def __init__(self, l_norm: torch.Tensor, points: list, grid_hw):
        from .pipeline import Colorizer
        L = (l_norm[:, 0] * lab.L_NORM + lab.L_CENT).numpy()
        self.plans = [Colorizer.spread_plan(L[i], pts, grid_hw) if pts else None
                      for i, pts in enumerate(points)]

    def __call__(self, ab_hat: torch.Tensor) -> torch.Tensor:
        from .hints import spread_hints
        return torch.stack([ab_hat[i] if plan is None else spread_hints(ab_hat[i], None, plan[0], weights=plan[2])
                            for i, plan in enumerate(self.plans)])


class Adversary:
    """Adversarial fine-tuning (--adv-weight): a patch discriminator
    (colorizer/models/patch_discriminator.py) learns to tell a crop's true colors from the ones
    the colorizer decodes for it, and the colorizer is rewarded for colors the discriminator takes
    for real (hinge losses). Both see the lightness with the colors, at the network's output grid.
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
        """weight x the colorizer's hinge loss on its decoded colors; None during the warm-up."""
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
        """One discriminator update on a batch of true and decoded colors."""
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
