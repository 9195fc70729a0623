"""Training: folder datasets, augmentation, losses, the training loop, checkpoints.

    python -m colorizer train --data DIR [DIR ...] --val DIR --arch backbone_unet \
        --encoder efficientnet_lite0 --head classification --out weights/NAME.pt

One epoch is --epoch-size random augmented crops. After each epoch: validation loss on --val,
reduce-on-plateau learning rate, the best epoch written to --out (fp16, ready to ship), and a
resume file (--out + '.resume', full precision with the optimizer) so that --resume carries on
after a restart. Early stopping after --patience epochs without improvement; --max-minutes
bounds the whole run. --adv-weight adds adversarial fine-tuning against a patch discriminator
(Adversary below) and keeps every epoch's checkpoint.
"""
from __future__ import annotations

import json
import math
import random
import sys
import time
from dataclasses import dataclass, asdict, field
from multiprocessing import Pool
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image, ImageOps

from . import lab
from .models import build_model
from .models.heads import HEADS, DEFAULT_TEMPERATURE, annealed_mean
from .weights import save_checkpoint, load_state_dict_strict, read_checkpoint

IMAGE_EXTENSIONS = {".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp"}
# the 313 in-gamut ab bin centres (grid 10) of Zhang et al. 2016 (BSD-2-Clause), shipped with the package
AB_BINS_313 = Path(__file__).resolve().parent / "data" / "ab_bins_313.npy"


def find_images(paths) -> list[Path]:
    """Image files under the given files or folders (recursive), sorted."""
    found = []
    for p in map(Path, paths):
        if p.is_dir():
            found += sorted(q for q in p.rglob("*") if q.suffix.lower() in IMAGE_EXTENSIONS and q.is_file())
        elif p.is_file():
            found.append(p)
        else:
            raise FileNotFoundError(f"{p} is neither an image file nor a folder")
    return found


def _load_one(args):
    path, short_side = args
    try:
        with Image.open(path) as im:
            im = ImageOps.exif_transpose(im).convert("RGB")
            if short_side and min(im.size) > short_side:
                s = short_side / min(im.size)
                im = im.resize((max(1, round(im.width * s)), max(1, round(im.height * s))), Image.BICUBIC)
            return np.asarray(im, dtype=np.uint8)
    except Exception:
        return None


def folder_shares(folders, weights) -> list[float]:
    """Each training folder's share of the random crops (summing to 1), from --data-weights (one
    per folder, relative: 3 1 gives 75 % and 25 %). Without them every photo is equally likely,
    so a folder's share is its size."""
    if len(weights) != len(folders):
        raise ValueError(f"--data-weights needs one weight per --data folder: {len(folders)} folders, "
                         f"{len(weights)} weights")
    if any(not math.isfinite(w) or w < 0 for w in weights) or sum(weights) <= 0:
        raise ValueError(f"--data-weights must be 0 or more with a positive sum, got {list(weights)}")
    total = float(sum(weights))
    return [w / total for w in weights]


def crop_sampler(folder_of: list[int], shares: list[float] | None = None, epoch_size: int = 4000):
    """Which photo each of an epoch's crops comes from. folder_of gives each photo's folder (an
    index into shares): without shares every photo is equally likely; with them each folder's
    share is divided among its photos, so each folder gives its share whatever its size."""
    if shares is None:
        return torch.utils.data.RandomSampler(range(len(folder_of)), replacement=True, num_samples=epoch_size)
    counts = np.bincount(folder_of, minlength=len(shares))
    weights = [shares[f] / counts[f] for f in folder_of]
    return torch.utils.data.WeightedRandomSampler(weights, epoch_size, replacement=True)


def load_images(paths, short_side: int | None = 256, workers: int = 2) -> list[np.ndarray]:
    """Decode photos to uint8 RGB arrays (short side at most short_side); unreadable ones are skipped."""
    jobs = [(str(p), short_side) for p in paths]
    if workers > 1 and len(jobs) > 64:
        with Pool(workers) as pool:
            imgs = pool.map(_load_one, jobs, chunksize=64)
    else:
        imgs = [_load_one(j) for j in jobs]
    return [im for im in imgs if im is not None]


class AugmentedCrops(torch.utils.data.Dataset):
    """Random crop of crop_size with random scale, small rotation and horizontal flip."""

    def __init__(self, images, crop_size=128, scale=(0.75, 1.25), max_rotation=10.0, p_rotate=0.3):
        self.images, self.crop, self.scale = images, crop_size, scale
        self.max_rotation, self.p_rotate = max_rotation, p_rotate

    def __len__(self):
        return len(self.images)

    def __getitem__(self, i):
        img = self.images[i]
        h, w = img.shape[:2]
        c = self.crop
        rot = random.random() < self.p_rotate
        need = int(math.ceil(c * 1.25)) if rot else c  # room for the rotated corners
        s = random.uniform(*self.scale)
        s = max(s, need / min(h, w))
        im = Image.fromarray(img)
        if abs(s - 1.0) > 1e-3:
            im = im.resize((max(need, round(w * s)), max(need, round(h * s))), Image.BILINEAR)
        W, H = im.size
        x0, y0 = random.randint(0, W - need), random.randint(0, H - need)
        im = im.crop((x0, y0, x0 + need, y0 + need))
        if rot:
            im = im.rotate(random.uniform(-self.max_rotation, self.max_rotation), Image.BILINEAR)
            o = (need - c) // 2
            im = im.crop((o, o, o + c, o + c))
        if random.random() < 0.5:
            im = im.transpose(Image.FLIP_LEFT_RIGHT)
        return torch.from_numpy(np.array(im, dtype=np.uint8))


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


def lab_batch(rgb_uint8: torch.Tensor | np.ndarray):
    """N x H x W x 3 uint8 -> (l_norm N x 1 x H x W, ab N x 2 x H x W in Lab units)."""
    arr = rgb_uint8.numpy() if isinstance(rgb_uint8, torch.Tensor) else rgb_uint8
    labs = torch.from_numpy(lab.rgb_to_lab(arr)).permute(0, 3, 1, 2)
    l_norm = (labs[:, :1] - lab.L_CENT) / lab.L_NORM
    return l_norm.contiguous(), labs[:, 1:].contiguous()


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


TRAIN_ONLY = ("all", "hint-branch")


def model_args_for(cfg: TrainConfig, n_bins: int) -> dict:
    args = {"decoder_channels": list(cfg.decoder_channels), "head": cfg.head,
            "out_stride": cfg.out_stride, "n_bins": n_bins, "temperature": cfg.temperature,
            "correction": cfg.correction, "gain": cfg.gain}
    if cfg.hints:
        args["hints"] = True
    if cfg.hint_branch:
        args["hint_branch"] = int(cfg.hint_branch)
    if cfg.arch == "backbone_unet":
        args["encoder"] = cfg.encoder
    elif cfg.arch != "unet":
        raise ValueError(f"architecture {cfg.arch!r} is not trainable here: use unet or backbone_unet")
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


def train(cfg: TrainConfig) -> dict:
    from tqdm import tqdm

    if cfg.head not in HEADS:
        raise ValueError(f"unknown head {cfg.head!r}: choose one of {', '.join(HEADS)}")
    if cfg.train_only not in TRAIN_ONLY:
        raise ValueError(f"--train-only must be one of {', '.join(TRAIN_ONLY)}, not {cfg.train_only!r}")
    if cfg.hint_branch and not cfg.hints:
        raise ValueError("--hint-branch needs --hints")
    if cfg.train_only == "hint-branch" and not cfg.hint_branch:
        raise ValueError("--train-only hint-branch needs --hint-branch")
    if cfg.through_spread and not (cfg.hints and cfg.head == "classification" and cfg.decode_weight):
        raise ValueError("--through-spread needs --hints, the classification head and --decode-weight")
    if cfg.adv_weight and cfg.train_only != "all":
        raise ValueError("--adv-weight trains the whole network: leave out --train-only")
    if cfg.adv_weight < 0:
        raise ValueError("--adv-weight must be 0 or more")
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    random.seed(cfg.seed)
    np.random.seed(cfg.seed)
    torch.manual_seed(cfg.seed)
    out = Path(cfg.out)
    resume_path = out.with_name(out.name + ".resume")
    log = _Log(cfg.log or str(out.with_suffix(".log")))
    log(f"config {json.dumps(asdict(cfg))}")

    t0 = time.time()
    shares = folder_shares(cfg.data, cfg.data_weights) if cfg.data_weights else None
    images, folder_of = [], []  # the photos, and the index of the --data folder each came from
    for i, folder in enumerate(cfg.data):
        loaded = load_images(find_images([folder]), short_side=max(256, cfg.crop_size))
        if shares and shares[i] and not loaded:
            raise ValueError(f"no images found under {folder}, which --data-weights gives "
                             f"{shares[i]:.0%} of the crops")
        images += loaded
        folder_of += [i] * len(loaded)
    if not images:
        raise ValueError(f"no images found under {', '.join(map(str, cfg.data))}")
    if shares:
        log("share of the crops per folder: " + ", ".join(
            f"{folder} {share:.0%}" for folder, share in zip(cfg.data, shares)))
    val_paths = find_images(cfg.val) if cfg.val else []
    if val_paths:
        rng = random.Random(1234)
        val_paths = sorted(rng.sample(val_paths, min(cfg.val_images, len(val_paths))))
        val_images = load_images(val_paths, short_side=256)
    else:  # hold out a slice of the training photos
        n_val = max(1, min(cfg.val_images, len(images) // 10))
        rng = random.Random(1234)
        order = list(range(len(images)))
        rng.shuffle(order)
        val_images = [images[i] for i in order[:n_val]]
        images = [images[i] for i in order[n_val:]]
        folder_of = [folder_of[i] for i in order[n_val:]]
    log(f"loaded {len(images)} training and {len(val_images)} validation photos in {time.time() - t0:.0f}s")

    # ab bins, prior and class weights (classification), stored with the model
    if cfg.bins_file:
        bins = np.load(cfg.bins_file).astype(np.float32)
    else:
        bins = np.load(AB_BINS_313).astype(np.float32)
    model_args = model_args_for(cfg, len(bins))
    model = build_model(cfg.arch, **model_args)
    class_weights = None
    if cfg.head == "classification":
        model.head.bins.copy_(torch.from_numpy(bins))
        _, w = rebalance_weights(images, bins, lam=cfg.rebalance_lambda)
        class_weights = torch.from_numpy(w)
        model.head.log_class_weights.copy_(class_weights.log())
        log(f"{len(bins)} ab bins; rebalancing weights from {min(3000, len(images))} photos: "
            f"min {w.min():.2f} max {w.max():.2f}")
    loss_fn = ColorLoss(cfg.head, cfg.regression_loss, torch.from_numpy(bins), class_weights,
                        cfg.decode_weight, cfg.temperature, cfg.correction, cfg.gain, cfg.ce_weight,
                        cfg.decode_loss)

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
    adversary = Adversary(cfg.adv_weight, cfg.disc_lr, cfg.disc_channels, cfg.adv_warmup) if cfg.adv_weight else None
    state = {"epoch": 0, "best_loss": float("inf"), "best_epoch": 0, "bad_epochs": 0,
             "elapsed_s": 0.0, "images_seen": 0, "history": []}
    if cfg.resume and resume_path.exists():
        ck = torch.load(resume_path, map_location="cpu", weights_only=False)
        if ck.get("arch") != cfg.arch or ck.get("model_args") != model_args:
            raise ValueError(
                f"{resume_path} was written by a run with another model ({ck.get('arch')} "
                f"{ck.get('model_args')}); resume with the same options, or delete it to start afresh")
        load_state_dict_strict(model, ck["model"], str(resume_path))
        opt.load_state_dict(ck["optimizer"])
        sched.load_state_dict(ck["scheduler"])
        state = ck["state"]
        if adversary is not None and ck.get("adversary"):
            adversary.load_state_dict(ck["adversary"])
        log(f"resumed from {resume_path} at epoch {state['epoch']} (best val loss {state['best_loss']:.4f})")
    elif cfg.init:
        init_from(model, cfg.init)
        log(f"initialized from {cfg.init}")
    elif cfg.pretrained and cfg.arch == "backbone_unet":
        model.load_pretrained_encoder(cfg.pretrained_file)
        log(f"encoder {cfg.encoder} initialized from ImageNet weights")

    multiple = model.input_multiple
    val_crops = center_crops(val_images, multiple)
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
    dataset = AugmentedCrops(images, cfg.crop_size)
    sampler = crop_sampler(folder_of, shares, cfg.epoch_size)
    loader = torch.utils.data.DataLoader(dataset, batch_size=cfg.batch_size, sampler=sampler,
                                         num_workers=cfg.workers, drop_last=True,
                                         persistent_workers=cfg.workers > 0)
    budget_s = cfg.max_minutes * 60 if cfg.max_minutes else None
    run_start = time.time() - state["elapsed_s"]

    def set_training_mode():
        model.train(not frozen)

    def evaluate() -> float:
        model.eval()
        tot, n = 0.0, 0
        with torch.inference_mode():
            for (l_norm, ab), hints, spread in zip(val_batches, val_hints, val_spread):
                pred = model(l_norm) if hints is None else model(l_norm, hints)
                tot += float(loss_fn(pred, ab, spread)) * len(l_norm)
                n += len(l_norm)
        set_training_mode()
        return tot / max(1, n)

    def meta_for(epoch: int) -> dict:
        return {
            "trained_on": [str(d) for d in cfg.data], "validated_on": [str(d) for d in cfg.val],
            "train_photos": len(images), "epochs": epoch, "images_seen": state["images_seen"],
            "train_minutes": round(state["elapsed_s"] / 60, 1),
            "input_size": cfg.input_size, "crop_size": cfg.crop_size, "head": cfg.head,
            "config": asdict(cfg),
        }

    stopped = ""
    while state["epoch"] < cfg.epochs:
        epoch = state["epoch"] + 1
        set_training_mode()
        bar = tqdm(loader, desc=f"epoch {epoch}", unit="batch", leave=False, dynamic_ncols=True,
                   disable=None)
        t_ep, seen, run_loss = time.time(), 0, 0.0
        out_of_time = False
        for crops in bar:
            l_norm, ab = lab_batch(crops)
            if cfg.hints:
                pts = [] if cfg.through_spread else None
                hints = sample_hints(ab, 0.0 if frozen else cfg.hint_p_none, cfg.hint_mean_count, points=pts)
                pred = model(l_norm, hints)
                spread = SpreadThrough(l_norm, pts, pred.shape[-2:]) if cfg.through_spread else None
                loss = loss_fn(pred, ab, spread)
            else:
                pred = model(l_norm)
                loss = loss_fn(pred, ab)
            if adversary is not None:
                real, fake = adversary.pair(l_norm, ab, loss_fn.decode(pred))
                g_adv = adversary.generator_loss(fake)
                if g_adv is not None:
                    loss = loss + g_adv
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            if adversary is not None:
                adversary.step(real, fake)
            seen += len(crops)
            lv = float(loss.detach())
            run_loss = 0.98 * run_loss + 0.02 * lv if seen > len(crops) else lv
            bar.set_postfix(loss=f"{run_loss:.4f}", img_s=f"{seen / (time.time() - t_ep):.1f}")
            if budget_s and time.time() - run_start > budget_s:
                out_of_time = True
                break
        bar.close()
        val_loss = evaluate()
        sched.step(val_loss)
        state["epoch"] = epoch
        state["images_seen"] += seen
        state["elapsed_s"] = time.time() - run_start
        improved = val_loss < state["best_loss"] - 1e-5
        rec = {"epoch": epoch, "train_loss": round(run_loss, 5), "val_loss": round(val_loss, 5),
               "lr": opt.param_groups[0]["lr"], "img_per_s": round(seen / max(1e-9, time.time() - t_ep), 1),
               "elapsed_min": round(state["elapsed_s"] / 60, 1)}
        if adversary is not None:
            rec.update(adversary.summary())
            adversary.reset_stats()
        state["history"].append(rec)
        meta = {**meta_for(epoch), "val_loss": round(val_loss, 5)}
        if improved:
            state["best_loss"], state["best_epoch"], state["bad_epochs"] = val_loss, epoch, 0
            save_checkpoint(out, model, cfg.arch, model_args, meta, half=True)
        else:
            state["bad_epochs"] += 1
        if adversary is not None or cfg.keep_epochs:
            # the validation loss does not measure what the discriminator adds, nor how a changed
            # mix of training photos does on other photos: every epoch is kept, to be chosen by
            # evaluation (colorfulness, realism score, the photos it is meant for) as well
            save_checkpoint(epoch_checkpoint(out, epoch), model, cfg.arch, model_args, meta, half=True)
        torch.save({"model": model.state_dict(), "optimizer": opt.state_dict(),
                    "scheduler": sched.state_dict(), "state": state, "model_args": model_args,
                    "arch": cfg.arch, "adversary": adversary.state_dict() if adversary else None},
                   resume_path)
        log(f"epoch {epoch} " + " ".join(f"{k}={v}" for k, v in rec.items() if k != "epoch")
            + (" best" if improved else ""))
        if out_of_time:
            stopped = f"time budget of {cfg.max_minutes} minutes reached"
            break
        if state["bad_epochs"] >= cfg.patience:
            stopped = f"early stop: no improvement for {cfg.patience} epochs"
            break
    log(f"done: {stopped or 'all epochs'}; best epoch {state['best_epoch']} "
        f"val loss {state['best_loss']:.4f}; checkpoint {out}")
    return state


def epoch_checkpoint(out: Path, epoch: int) -> Path:
    """Where a run that keeps each epoch (--keep-epochs, --adv-weight) puts it: NAME.pt ->
    NAME.epoch3.pt beside it."""
    return out.with_name(f"{out.stem}.epoch{epoch}{out.suffix}")


def init_from(model, path) -> None:
    """Start from another checkpoint's weights. The two models must match tensor for tensor,
    except the hint layers a hint model adds (they start at zero, so the model starts out as the
    one it came from)."""
    ck = read_checkpoint(path)
    own = model.state_dict()
    src = {k: v.float() if v.is_floating_point() else v for k, v in ck["state_dict"].items()}
    new_ok = {k for k in own if k.startswith(("hint_stem.", "hint_mix.", "hint_branch."))}
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
    p.add_argument("--data", nargs="+", required=True, metavar="DIR", help="folders of color photos")
    p.add_argument("--data-weights", type=float, nargs="+", default=None, metavar="W",
                   help="each --data folder's relative share of the crops (default: in proportion to its photos)")
    p.add_argument("--val", nargs="*", default=[], metavar="DIR",
                   help="validation photos (default: hold out part of --data)")
    p.add_argument("--out", required=True, help="checkpoint to write, e.g. weights/mymodel.pt")
    p.add_argument("--arch", default=d.arch, choices=["backbone_unet", "unet"])
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
                   help="start from this checkpoint's weights (e.g. fine-tune a plain model into a hint model)")
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
    p.add_argument("--log", default=None, help="log file (default: OUT with .log)")


def main(args) -> int:
    fields = TrainConfig.__dataclass_fields__
    cfg = TrainConfig(**{k: v for k, v in vars(args).items() if k in fields})
    train(cfg)
    return 0
