"""Training photos: a decoded-photo cache on disk, deterministic crop plans, and the batch builder
that prepares a training batch (crop, augment, Lab, hints) away from the training threads.

- PhotoCache: every photo of a set of folders decoded once, scaled to a short side, and stored
  as raw uint8 RGB in one file (`pixels.u8`) with an index (`index.npy`: offset, height, width,
  folder) and `meta.json` (the folders, a fingerprint of their files, the short side). Reading
  it is a memory map: no decoding at start-up, and DataLoader workers share the pages. The cache
  key is the folders' file list (names, sizes, modification times) and the short side, so a
  changed folder is decoded again. A training pack (`python -m colorizer pack`) is the same
  format, with the photos chosen by share and scaled down to fit a byte limit.
- epoch_plan / crop_seed: which photo each crop of an epoch comes from and the seed of its
  augmentation, as pure functions of (seed, epoch, position). A run that stops anywhere resumes
  with exactly the crops it would have seen, whatever the number of workers or processes.
- BatchBuilder: batch k of an epoch for one rank: its crops, augmented, as (l_norm, ab, hints).
- sample_hints: random color hints taken from the true colors (training a hint model).
- crop_sampler / AugmentedCrops: the data path before the cache (kept for `bench --train`);
  center_crops: deterministic validation inputs.
Numpy, Pillow and torch only: nothing here knows about models or losses.
"""
from __future__ import annotations

import hashlib
import json
import math
import os
import random
from dataclasses import dataclass
from multiprocessing import Pool
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageOps

from . import lab
from .settings import Settings, settings

IMAGE_EXTENSIONS = {".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp"}
DEFAULT_CACHE_DIR = Settings().cache_dir


def default_cache_dir() -> Path:
    """Where decoded photos are cached: $COLORIZER_CACHE_DIR, else .cache/photos in the repository."""
    return settings().cache_dir


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


def load_images(paths, short_side: int | None = 256, workers: int = 2) -> list[np.ndarray]:
    """Decode photos to uint8 RGB arrays (short side at most short_side); unreadable ones are skipped."""
    jobs = [(str(p), short_side) for p in paths]
    if workers > 1 and len(jobs) > 64:
        with Pool(workers) as pool:
            imgs = pool.map(_load_one, jobs, chunksize=64)
    else:
        imgs = [_load_one(j) for j in jobs]
    return [im for im in imgs if im is not None]


# --- the decoded-photo cache ---------------------------------------------------------------------

def _fingerprint(folders, files_per_folder, short_side: int) -> str:
    h = hashlib.sha256(f"short_side={short_side}\n".encode())
    for folder, files in zip(folders, files_per_folder):
        h.update(f"folder {Path(folder).resolve()}\n".encode())
        for p in files:
            st = p.stat()
            h.update(f"{p.name} {st.st_size} {st.st_mtime_ns}\n".encode())
    return h.hexdigest()[:20]


class PhotoCache:
    """Decoded photos in one memory-mapped file; photo(i) is an H x W x 3 uint8 view."""

    def __init__(self, root):
        self.root = Path(root)
        meta_path = self.root / "meta.json"
        if not meta_path.is_file():
            raise FileNotFoundError(f"{self.root} is not a photo cache or training pack (no meta.json)")
        self.meta = json.loads(meta_path.read_text())
        self.index = np.load(self.root / "index.npy")  # rows: offset, height, width, folder
        size = int(self.meta["bytes"])
        self.pixels = np.memmap(self.root / "pixels.u8", dtype=np.uint8, mode="r", shape=(size,)) if size else \
            np.zeros(0, np.uint8)

    def __len__(self) -> int:
        return len(self.index)

    def __getstate__(self):  # a worker process reopens the memory map instead of copying it
        return {"root": str(self.root)}

    def __setstate__(self, d):
        self.__init__(d["root"])

    @property
    def folders(self) -> list[str]:
        return list(self.meta["folders"])

    @property
    def folder_of(self) -> list[int]:
        return [int(f) for f in self.index[:, 3]]

    def photo(self, i: int) -> np.ndarray:
        off, h, w, _ = (int(v) for v in self.index[i])
        return self.pixels[off:off + h * w * 3].reshape(h, w, 3)

    @classmethod
    def write(cls, root, folders, photos_per_folder, short_side: int, extra_meta=None) -> "PhotoCache":
        """Write photos (a list of uint8 arrays per folder) as a cache at root."""
        root = Path(root)
        root.mkdir(parents=True, exist_ok=True)
        rows, off = [], 0
        tmp = root / f"pixels.u8.{os.getpid()}.tmp"
        with open(tmp, "wb") as f:
            for fi, photos in enumerate(photos_per_folder):
                for im in photos:
                    im = np.ascontiguousarray(im, dtype=np.uint8)
                    f.write(im.tobytes())
                    rows.append((off, im.shape[0], im.shape[1], fi))
                    off += im.size
        os.replace(tmp, root / "pixels.u8")
        index_tmp = root / f"index.{os.getpid()}.tmp.npy"
        np.save(index_tmp, np.array(rows, dtype=np.int64).reshape(-1, 4))
        os.replace(index_tmp, root / "index.npy")
        meta = {"folders": [str(f) for f in folders], "short_side": short_side, "bytes": off,
                "photos": [len(p) for p in photos_per_folder], **(extra_meta or {})}
        meta_tmp = root / f"meta.json.{os.getpid()}.tmp"
        meta_tmp.write_text(json.dumps(meta, indent=1))
        os.replace(meta_tmp, root / "meta.json")  # written last: marks it complete
        return cls(root)

    @classmethod
    def build(cls, folders, short_side: int = 256, cache_dir=None, workers: int = 2, log=None) -> "PhotoCache":
        """The cache of these folders at this short side: opened when it exists, else made
        (each photo decoded once; unreadable ones skipped)."""
        files = [find_images([folder]) for folder in folders]  # one walk: the key, then the decoding
        key = _fingerprint(folders, files, short_side)
        root = Path(cache_dir or default_cache_dir()) / key
        if (root / "meta.json").is_file():
            return cls(root)
        per_folder = []
        for folder, paths in zip(folders, files):
            per_folder.append(load_images(paths, short_side=short_side, workers=workers))
            if log:
                log(f"decoded {len(per_folder[-1])} photos of {folder} into the cache")
        return cls.write(root, folders, per_folder, short_side, {"key": key})


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


# --- deterministic crop plans ---------------------------------------------------------------------

def _mix(*parts: int) -> int:
    """A 63-bit seed from integers (stable across processes and Python versions)."""
    h = hashlib.blake2b(",".join(str(int(p)) for p in parts).encode(), digest_size=8).digest()
    return int.from_bytes(h, "little") >> 1


def epoch_plan(seed: int, epoch: int, folder_of, shares=None, epoch_size: int = 4000) -> np.ndarray:
    """Which photo each of an epoch's crops comes from (with replacement). Without shares every
    photo is equally likely; with them each folder's share is divided among its photos."""
    rng = np.random.default_rng(_mix(seed, epoch, 17))
    n = len(folder_of)
    if shares is None:
        return rng.integers(0, n, size=epoch_size)
    folder_of = np.asarray(folder_of)
    counts = np.bincount(folder_of, minlength=len(shares))
    p = np.array([shares[f] / counts[f] for f in folder_of], dtype=np.float64)
    return rng.choice(n, size=epoch_size, replace=True, p=p / p.sum())


def crop_seed(seed: int, epoch: int, position: int) -> int:
    """The augmentation seed of the crop at this position of the epoch."""
    return _mix(seed, epoch, position, 29)


def augmented_crop(img: np.ndarray, crop: int, rng: random.Random, scale=(0.75, 1.25),
                   max_rotation: float = 10.0, p_rotate: float = 0.3) -> np.ndarray:
    """A random crop of crop x crop with random scale, small rotation and horizontal flip."""
    h, w = img.shape[:2]
    rot = rng.random() < p_rotate
    need = int(math.ceil(crop * 1.25)) if rot else crop  # room for the rotated corners
    s = max(rng.uniform(*scale), need / min(h, w))
    im = Image.fromarray(np.asarray(img))
    if abs(s - 1.0) > 1e-3:
        im = im.resize((max(need, round(w * s)), max(need, round(h * s))), Image.BILINEAR)
    W, H = im.size
    x0, y0 = rng.randint(0, W - need), rng.randint(0, H - need)
    im = im.crop((x0, y0, x0 + need, y0 + need))
    if rot:
        im = im.rotate(rng.uniform(-max_rotation, max_rotation), Image.BILINEAR)
        o = (need - crop) // 2
        im = im.crop((o, o, o + crop, o + crop))
    if rng.random() < 0.5:
        im = im.transpose(Image.FLIP_LEFT_RIGHT)
    return np.array(im, dtype=np.uint8)


def lab_batch(rgb_uint8: torch.Tensor | np.ndarray):
    """N x H x W x 3 uint8 -> (l_norm N x 1 x H x W, ab N x 2 x H x W in Lab units)."""
    arr = rgb_uint8.numpy() if isinstance(rgb_uint8, torch.Tensor) else rgb_uint8
    labs = torch.from_numpy(lab.rgb_to_lab(arr)).permute(0, 3, 1, 2)
    l_norm = (labs[:, :1] - lab.L_CENT) / lab.L_NORM
    return l_norm.contiguous(), labs[:, 1:].contiguous()


@dataclass
class HintSampling:
    """Random hints for each training crop (sample_hints): off when None."""
    p_none: float = 0.3
    mean_count: float = 8.0


class BatchBuilder(torch.utils.data.Dataset):
    """Batch k of an epoch, for one rank of `world`: the global batch is positions
    k * batch_size * world ... of the epoch's plan, and this rank takes every world-th of them.
    Returns (l_norm, ab, hints or an empty tensor, hint points: for each crop its hints as
    [(x, y, a, b)], or [] without hints; colorizer.losses.SpreadThrough takes them). Everything random is seeded by (seed, epoch,
    position), so a batch is the same whoever builds it and whenever."""

    def __init__(self, photos, plan: np.ndarray, seed: int, epoch: int, crop_size: int, batch_size: int,
                 hints: HintSampling | None = None, rank: int = 0, world: int = 1):
        self.photos, self.plan, self.seed, self.epoch = photos, plan, seed, epoch
        self.crop, self.batch, self.hints = crop_size, batch_size, hints
        self.rank, self.world = rank, world

    def __len__(self) -> int:
        return len(self.plan) // (self.batch * self.world)

    def __getitem__(self, k: int):
        g = self.batch * self.world
        positions = range(k * g + self.rank, (k + 1) * g, self.world)
        crops = np.stack([augmented_crop(self.photos(int(self.plan[p])), self.crop,
                                         random.Random(crop_seed(self.seed, self.epoch, p)))
                          for p in positions])
        l_norm, ab = lab_batch(crops)
        if self.hints is None:
            return l_norm, ab, torch.zeros(0), []
        rng = random.Random(_mix(self.seed, self.epoch, k, self.rank, 31))
        points: list = []
        hints = sample_hints(ab, self.hints.p_none, self.hints.mean_count, generator=rng, points=points)
        return l_norm, ab, hints, points


# --- crops and hints for the old data path and validation ---------------------------------------

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
    """Deterministic validation inputs: center crops with sides a multiple of `multiple`."""
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


# --- color hints sampled from the truth (training a hint model) -----------------------------

def sample_hints(ab: torch.Tensor, p_none: float = 0.3, mean_count: float = 8.0, max_count: int = 40,
                 max_radius: int = 2, generator: random.Random | None = None, points: list | None = None
                 ) -> torch.Tensor:
    """Random user hints taken from the true colors, as in Zhang et al. 2017.

    ab: N x 2 x H x W (Lab units) -> N x 3 x H x W (a / AB_NORM, b / AB_NORM, mask). Each photo
    gets no hints with probability p_none, else a geometric number of them (mean `mean_count`, at
    most max_count) at uniform positions; a hint is a square patch of half-size 0..max_radius
    holding the patch's mean true color. A list passed as `points` receives, for each photo,
    its hints as the pipeline takes them: [(x, y, a, b)] (center pixel, color in Lab units).
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
            color = ab[i, :, y0:y1, x0:x1].mean(dim=(1, 2)) / lab.AB_NORM
            out[i, 0, y0:y1, x0:x1] = color[0]
            out[i, 1, y0:y1, x0:x1] = color[1]
            out[i, 2, y0:y1, x0:x1] = 1.0
            if points is not None:
                points[i].append((cx, cy, float(color[0]) * lab.AB_NORM, float(color[1]) * lab.AB_NORM))
    return out


# --- training packs -------------------------------------------------------------------------------

def write_pack(folders, out_dir, weights=None, max_mb: float = 60.0, size: int = 128, seed: int = 0,
               log=print) -> PhotoCache:
    """A compact training pack: square crops of size x size (each photo scaled to that short side
    and center-cropped), drawn from each folder in proportion to its weight (default: its size)
    in a seeded random order, until max_mb megabytes of pixels are written. The pack is a
    PhotoCache (`train --pack DIR`): nothing to decode on the machine that trains."""
    folders = [str(f) for f in folders]
    files = [find_images([f]) for f in folders]
    shares = folder_shares(folders, [len(f) for f in files] if weights is None else weights)
    if not math.isfinite(max_mb) or max_mb <= 0:
        raise ValueError(f"--max-mb must be a positive number, not {max_mb}")
    if size < 32:
        raise ValueError(f"--size must be at least 32 pixels, not {size}")
    per_photo = size * size * 3
    total = int(max_mb * 2**20) // per_photo
    chosen = []
    for fi, (paths, share) in enumerate(zip(files, shares)):
        want = min(len(paths), int(total * share))
        order = np.random.default_rng(_mix(seed, fi, 41)).permutation(len(paths))
        crops = []
        for j in order:
            if len(crops) >= want:
                break
            im = _load_one((str(paths[j]), None))
            if im is None:
                continue
            pil = Image.fromarray(im)
            s = size / min(pil.size)
            pil = pil.resize((max(size, round(pil.width * s)), max(size, round(pil.height * s))), Image.BICUBIC)
            x0, y0 = (pil.width - size) // 2, (pil.height - size) // 2
            crops.append(np.asarray(pil.crop((x0, y0, x0 + size, y0 + size))))
        chosen.append(crops)
        log(f"{folders[fi]}: {len(crops)} of {len(paths)} photos")
    pack = PhotoCache.write(out_dir, folders, chosen, size, {"pack": True, "size": size, "seed": seed})
    log(f"wrote {out_dir}: {len(pack)} crops of {size} x {size}, {pack.meta['bytes'] / 2**20:.1f} MB")
    return pack
