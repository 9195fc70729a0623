"""Training-speed benchmark (`python -m colorizer bench --train`): training images per second of
the shipped recipe's step (EfficientNet-Lite0 U-Net with hint inputs, rebalanced cross-entropy
plus the decoded-color term) at each crop size, for the old and the new data and compute path,
in the same run.

- old: the path before the photo cache: crops augmented in a DataLoader worker from photos held
  in memory, their Lab conversion and hints on the training threads, float32 forward.
- new: colorizer.data.BatchBuilder (crop, augmentation, Lab and hints in the worker, read from
  the memory-mapped photo cache), the forward pass under bfloat16 autocast where the CPU has
  native bfloat16 (colorizer.train_runtime.bf16_supported; depthwise convolutions stay in float32, see
  colorizer/models/efficientnet_lite.py) and the channels_last layout, as `train` does by default.
- new, NCHW: the same in the contiguous layout (`train --no-channels-last`).

The paths take turns, a few steps each, so that other load on the machine weighs on all of them
alike; each gets the median of its rounds. Photos: --data folders, else scikit-image's sample
photos.
"""
from __future__ import annotations

import statistics
import tempfile
import time

import numpy as np
import torch

from . import data as photo_data
from .models import build_model
from .data import AugmentedCrops, crop_sampler, lab_batch, sample_hints
from .losses import AB_BINS_313, ColorLoss
from .train_runtime import bf16_supported


def _sample_photos() -> list[np.ndarray]:
    from PIL import Image
    from skimage import data as skdata
    photos = []
    for name in ("astronaut", "coffee", "chelsea", "rocket", "hubble_deep_field", "immunohistochemistry"):
        im = Image.fromarray(getattr(skdata, name)())
        s = 256 / min(im.size)
        photos.append(np.asarray(im.resize((round(im.width * s), round(im.height * s)), Image.BICUBIC)))
    return photos


def _model():
    torch.manual_seed(0)
    model = build_model("backbone_unet", encoder="efficientnet_lite0", decoder_channels=[160, 96, 64],
                        head="classification", n_bins=313, hints=True)
    bins = torch.from_numpy(np.load(AB_BINS_313).astype(np.float32))
    model.head.bins.copy_(bins)
    loss = ColorLoss("classification", bins=bins, class_weights=torch.ones(len(bins)), decode_weight=100.0,
                     temperature=0.38, correction=0.5)
    return model.train(), loss


class _OldPath:
    """The loop as it was: AugmentedCrops in one worker, Lab and hints here, float32."""

    def __init__(self, photos, crop, batch, steps):
        ds = AugmentedCrops(photos, crop)
        sampler = crop_sampler([0] * len(photos), None, batch * steps)
        self.it = iter(torch.utils.data.DataLoader(ds, batch_size=batch, sampler=sampler, num_workers=1,
                                                   drop_last=True, persistent_workers=True))
        self.model, self.loss = _model()
        self.opt = torch.optim.Adam(self.model.parameters(), 1e-4)

    def step(self):
        l_norm, ab = lab_batch(next(self.it))
        hints = sample_hints(ab)
        loss = self.loss(self.model(l_norm, hints), ab)
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        self.opt.step()


class _NewPath:
    """The loop as `train` runs it: BatchBuilder in one worker, autocast forward."""

    def __init__(self, cache, crop, batch, steps, channels_last=False):
        plan = photo_data.epoch_plan(0, 1, cache.folder_of, None, batch * steps)
        builder = photo_data.BatchBuilder(cache.photo, plan, 0, 1, crop, batch, photo_data.HintSampling())
        self.it = iter(torch.utils.data.DataLoader(builder, batch_size=None, num_workers=1, prefetch_factor=4,
                                                   persistent_workers=True))
        self.model, self.loss = _model()
        self.cl = channels_last
        if channels_last:
            self.model.to(memory_format=torch.channels_last)
        self.opt = torch.optim.Adam(self.model.parameters(), 1e-4)
        self.dtype = torch.bfloat16 if bf16_supported() else None

    def step(self):
        l_norm, ab, hints, _ = next(self.it)
        if self.cl:
            l_norm = l_norm.contiguous(memory_format=torch.channels_last)
            hints = hints.contiguous(memory_format=torch.channels_last)
        with torch.autocast("cpu", dtype=self.dtype or torch.float32, enabled=self.dtype is not None):
            pred = self.model(l_norm, hints)
        loss = self.loss(pred.float(), ab)
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        self.opt.step()


def run(sizes=(128, 224), batch: int = 32, rounds: int = 5, steps_per_round: int = 3, data=None,
        threads=None, nchw: bool = True, out=print) -> dict:
    if threads:
        torch.set_num_threads(threads)
    photos = photo_data.load_images(photo_data.find_images(data))[:400] if data else _sample_photos()
    if not photos:
        raise ValueError("no photos to train on in " + ", ".join(map(str, data)))
    out(f"torch {torch.__version__}, {torch.get_num_threads()} threads; bfloat16 native: {bf16_supported()}; "
        f"{len(photos)} photos; batch {batch}; {rounds} rounds of {steps_per_round} steps per path")
    result = {"batch": batch, "threads": torch.get_num_threads(), "bf16": bf16_supported(), "sizes": {}}
    with tempfile.TemporaryDirectory() as tmp:
        cache = photo_data.PhotoCache.write(tmp, ["bench"], [photos], 256)
        for size in sizes:
            n_steps = (rounds + 1) * steps_per_round
            paths = {"old": _OldPath(photos, size, batch, n_steps),
                     "new": _NewPath(cache, size, batch, n_steps, channels_last=True)}
            if nchw:
                paths["new, NCHW"] = _NewPath(cache, size, batch, n_steps, channels_last=False)
            for p in paths.values():  # warm-up round (workers start, kernels are chosen)
                for _ in range(steps_per_round):
                    p.step()
            times = {k: [] for k in paths}
            for _ in range(rounds):
                for name, p in paths.items():
                    t = time.perf_counter()
                    for _ in range(steps_per_round):
                        p.step()
                    times[name].append((time.perf_counter() - t) / steps_per_round)
            ips = {k: batch / statistics.median(v) for k, v in times.items()}
            result["sizes"][size] = {"images_per_s": ips, "speedup": ips["new"] / ips["old"]}
            line = ", ".join(f"{k} {v:.1f}" for k, v in ips.items())
            out(f"  {size} px: training images per second: {line}; new / old = {ips['new'] / ips['old']:.2f}x")
            del paths
    return result
