"""The photos of a training run: the training photos (from the photo cache or a training pack,
less those held out), each one's folder and the folders' shares, the validation photos (a folder,
or a slice held out of the training photos) and the fixed validation batches.
"""
from __future__ import annotations

import random
import time
from dataclasses import dataclass

import numpy as np
import torch

from .data import PhotoCache, center_crops, find_images, folder_shares, lab_batch, load_images, sample_hints
from .losses import SpreadThrough
from .train_config import TrainConfig
from .train_runtime import Runtime


class TrainingPhotos:
    """The training photos as a sequence: the cache's photos, less those held out for validation."""

    def __init__(self, cache: PhotoCache, ids: list[int]):
        self.cache, self.ids = cache, ids

    def __len__(self):
        return len(self.ids)

    def __getitem__(self, i):
        return self.cache.photo(self.ids[i])

    __call__ = __getitem__

    @property
    def cache_key(self) -> str:
        """What identifies these photos in the crop plan's signature."""
        return self.cache.meta.get("key") or f"{self.cache.root} {self.cache.meta.get('bytes')}"


@dataclass
class RunPhotos:
    """A run's photos: the training photos, each one's folder (an index into --data), the folders'
    shares of the crops (None: in proportion to their photos) and the validation photos."""
    images: TrainingPhotos
    folder_of: list
    shares: list | None
    val_images: list


def training_photos(cfg: TrainConfig, log, rt: Runtime | None = None) -> RunPhotos:
    """The run's photos, decoded once into the photo cache (rank 0 decodes) or read from --pack;
    the validation photos are --val's, else a seeded slice held out of the training photos."""
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
    return RunPhotos(TrainingPhotos(cache, ids), [folder_of[i] for i in ids], shares, val_images)


def validation_batches(cfg: TrainConfig, model, val_images, frozen: bool) -> list:
    """Fixed validation batches [((l_norm, ab), hints or None, SpreadThrough or None)] (hints
    only for a hint branch trained alone: fixed ones, the same every epoch)."""
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
