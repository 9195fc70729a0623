"""Colorizer: preprocess, predict, full-resolution postprocess.

    photo -> L (full resolution) -> L at the working resolution -> network -> ab
          -> ab upsampled to full resolution -> (full L, ab) -> sRGB

Only the chroma comes from the network: the output keeps every detail of the input's lightness.
A color input is reduced to its lightness first; its chroma is never looked at.

Colorizer's public low-level steps (working_input, predict_small, logits, spread_plan, spread) are
what training, the benchmarks and the sweep scripts build on. Torch, numpy and Pillow; no UI.
"""
from __future__ import annotations

import io
import math
import os
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image, ImageOps, UnidentifiedImageError

from . import lab
from .errors import ImageError

# Pillow refuses images above twice this many pixels as decompression bombs
MAX_PIXELS = Image.MAX_IMAGE_PIXELS or 89_478_485


# --- preprocessing ------------------------------------------------------------------------------

def _open_path(path) -> Image.Image:
    p = Path(path)
    if not p.exists():
        raise ImageError(f"image file {p} does not exist")
    if p.is_dir():
        raise ImageError(f"{p} is a folder, not an image file")
    if p.stat().st_size == 0:
        raise ImageError(f"image file {p} is empty (0 bytes)")
    try:
        im = Image.open(p)
        im.load()
        return im
    except Image.DecompressionBombError as exc:
        raise ImageError(f"image file {p} is too large to decode safely: more than "
                         f"{2 * (Image.MAX_IMAGE_PIXELS or MAX_PIXELS):,} pixels ({exc})") from exc
    except UnidentifiedImageError as exc:
        raise ImageError(f"{p} is not an image file that can be read (PNG, JPEG, TIFF, WebP, BMP, "
                         "GIF ...)") from exc
    except (OSError, SyntaxError, ValueError) as exc:
        raise ImageError(f"image file {p} is damaged or truncated and cannot be decoded ({exc})") from exc


def _from_pil(im: Image.Image) -> np.ndarray:
    """PIL image (any mode) -> gray H x W or RGB H x W x 3 array (uint8, uint16 or float32)."""
    try:
        im = ImageOps.exif_transpose(im)
    except Exception:  # broken EXIF blocks: keep the pixels as stored
        pass
    mode = im.mode
    if mode in ("I;16", "I;16L", "I;16B", "I;16N"):
        return np.asarray(im).astype(np.uint16)
    if mode == "I":
        a = np.asarray(im)
        if a.size and (a.min() < 0 or a.max() > 65535):
            raise ImageError("32-bit integer images are supported only with values 0..65535")
        return a.astype(np.uint16)
    if mode == "F":
        return _from_array(np.asarray(im, dtype=np.float32))
    if mode in ("L", "1"):
        return np.asarray(im.convert("L"))
    if mode == "LA" or mode == "La":
        return np.asarray(im.convert("L"))
    if mode in ("P", "PA"):
        im = im.convert("RGBA")
    return np.asarray(im.convert("RGB"))


def _from_array(a: np.ndarray) -> np.ndarray:
    if a.ndim == 3 and a.shape[-1] == 1:
        a = a[..., 0]
    elif a.ndim == 3 and a.shape[-1] == 2:  # gray + alpha
        a = a[..., 0]
    elif a.ndim == 3 and a.shape[-1] == 4:  # RGBA: alpha ignored
        a = a[..., :3]
    if not (a.ndim == 2 or (a.ndim == 3 and a.shape[-1] == 3)):
        raise ImageError(f"expected a gray (H x W) or RGB / RGBA (H x W x 3 or 4) image array, "
                         f"got shape {a.shape}")
    if a.shape[0] < 1 or a.shape[1] < 1:
        raise ImageError(f"the image is empty (shape {a.shape})")
    if a.dtype == np.uint8 or a.dtype == np.uint16:
        return a
    if a.dtype == bool:
        return a.astype(np.uint8) * 255
    if np.issubdtype(a.dtype, np.integer):
        hi = int(a.max()) if a.size else 0
        if a.min() < 0 or hi > 65535:
            raise ImageError("integer image values must lie in 0..255 (8-bit) or 0..65535 (16-bit)")
        return a.astype(np.uint8 if hi <= 255 else np.uint16)
    if np.issubdtype(a.dtype, np.floating):
        a = a.astype(np.float32)
        if not np.isfinite(a).all():
            raise ImageError("the image array holds NaN or infinite values")
        if a.size and a.max() > 1.0:  # 0..255 floats
            a = a / 255.0
        return np.clip(a, 0.0, 1.0)
    raise ImageError(f"unsupported image array type {a.dtype}")


def load_image(image) -> np.ndarray:
    """A PIL image, numpy array, file path or encoded bytes -> gray H x W or RGB H x W x 3 array
    (uint8, uint16, or float32 in [0, 1]). EXIF rotation is applied; alpha is dropped."""
    if isinstance(image, np.ndarray):
        return _from_array(image)
    if isinstance(image, Image.Image):
        return _from_pil(image)
    if isinstance(image, (str, os.PathLike)):
        with _open_path(image) as im:
            return _from_pil(im)
    if isinstance(image, (bytes, bytearray)):
        if not image:
            raise ImageError("the image data is empty (0 bytes)")
        try:
            with Image.open(io.BytesIO(image)) as im:
                im.load()
                return _from_pil(im)
        except Image.DecompressionBombError as exc:
            raise ImageError(f"the image is too large to decode safely ({exc})") from exc
        except UnidentifiedImageError as exc:
            raise ImageError("the data is not an image that can be read") from exc
        except OSError as exc:
            raise ImageError(f"the image is damaged or truncated ({exc})") from exc
    raise ImageError(f"cannot use a {type(image).__name__} as an image: pass a PIL image, a numpy "
                     "array, a file path or encoded image bytes")


def lightness_of(image) -> np.ndarray:
    """CIE L (float32 H x W, 0..100) of any accepted image input."""
    return lab.rgb_to_lightness(load_image(image))


def working_size(height: int, width: int, input_size: int, multiple: int) -> tuple[int, int]:
    """Network input size: about input_size**2 pixels, the photo's aspect ratio, sides a multiple
    of `multiple` (at least one multiple)."""
    s = input_size / math.sqrt(height * width)
    h = max(multiple, int(round(height * s / multiple)) * multiple)
    w = max(multiple, int(round(width * s / multiple)) * multiple)
    return h, w


def resize_plane(plane: np.ndarray, size_hw: tuple[int, int]) -> np.ndarray:
    """Resize a float32 plane (antialiased when shrinking)."""
    h, w = size_hw
    if plane.shape == (h, w):
        return plane.astype(np.float32, copy=False)
    im = Image.fromarray(np.ascontiguousarray(plane, dtype=np.float32), mode="F")
    return np.asarray(im.resize((w, h), Image.BILINEAR, reducing_gap=2.0), dtype=np.float32)


def upsample_ab(ab: torch.Tensor, size_hw: tuple[int, int]) -> np.ndarray:
    """N=1 x 2 x h x w ab -> 2 x H x W float32 numpy (bilinear)."""
    if tuple(ab.shape[-2:]) != tuple(size_hw):
        ab = F.interpolate(ab.float(), size=size_hw, mode="bilinear", align_corners=False)
    return ab[0].float().cpu().numpy()


def hints_tensor(hints, full_hw, work_hw, radius: int = 1) -> torch.Tensor:
    """User hints [(x, y, a, b), ...] in full-resolution pixel coordinates and Lab ab units
    -> 1 x 3 x h x w tensor (a / AB_NORM, b / AB_NORM, mask) at the working resolution."""
    H, W = full_hw
    h, w = work_hw
    t = torch.zeros(1, 3, h, w)
    for i, hint in enumerate(hints):
        try:
            x, y, a, b = (float(v) for v in hint)
        except (TypeError, ValueError) as exc:
            raise ValueError(f"hint {i} must be (x, y, a, b) numbers, got {hint!r}") from exc
        if not (0 <= x < W and 0 <= y < H):
            raise ValueError(f"hint {i} at ({x}, {y}) lies outside the {W} x {H} image")
        cx, cy = int(x * w / W), int(y * h / H)
        y0, y1 = max(0, cy - radius), min(h, cy + radius + 1)
        x0, x1 = max(0, cx - radius), min(w, cx + radius + 1)
        t[0, 0, y0:y1, x0:x1] = a / lab.AB_NORM
        t[0, 1, y0:y1, x0:x1] = b / lab.AB_NORM
        t[0, 2, y0:y1, x0:x1] = 1.0
    return t


# --- the colorizer -------------------------------------------------------------------------------

class Colorizer:
    """A loaded model with its pre- and postprocessing. Use colorizer.load_colorizer(name)."""

    def __init__(self, model: torch.nn.Module, name: str = "model", input_size: int = 256,
                 device: str | torch.device = "cpu", info: dict | None = None):
        self.model = model.eval()
        # the memory layout to feed the network in (channels_last after
        # colorizer.models.inference.optimize_for_inference)
        self.input_layout = getattr(model, "input_layout", torch.preserve_format)
        self.name = name
        self.input_size = int(input_size)
        self.device = torch.device(device)
        self.info = info or {}
        self.multiple = int(getattr(model, "input_multiple", 8))
        self.accepts_hints = bool(getattr(model, "accepts_hints", False))

    def __repr__(self):
        return f"Colorizer({self.name!r}, input_size={self.input_size}, device={str(self.device)!r})"

    # network at the working resolution
    def _run(self, l_small: np.ndarray, hints: torch.Tensor | None, decode: bool,
             z: torch.Tensor | None = None) -> torch.Tensor:
        """N x h x w L planes (+ hints) -> the network's ab (decode) or raw output (logits); for a
        VAE-GAN given K latent codes z (K x latent), a list of K of them (the encoder runs once)."""
        x = torch.from_numpy(np.array(l_small, dtype=np.float32))[:, None]
        x = ((x - lab.L_CENT) / lab.L_NORM).to(self.device, memory_format=self.input_layout)
        if hints is not None:
            hints = hints.to(self.device, memory_format=self.input_layout)
        with torch.inference_mode():
            if z is not None:
                outs = self.model.forward_latents(x, z.to(self.device), hints)
                return [self.model.head.decode(o) for o in outs] if decode else outs
            fn = self.model.predict_ab if decode else self.model
            if self.accepts_hints:
                return fn(x, hints)
            return fn(x)

    def predict_small(self, l_small: np.ndarray, hints: torch.Tensor | None = None) -> torch.Tensor:
        """The network alone, decoded: N x h x w L planes (0..100) at the working resolution, with
        hint planes (N x 3 x h x w, from working_input) for a model that takes them, -> N x 2 x h' x w'
        ab (Lab units) at the network's output size. No upsampling, no hint spreading."""
        return self._run(l_small, hints, decode=True)

    def working_input(self, L: np.ndarray, hints=None, input_size: int | None = None
                      ) -> tuple[np.ndarray, torch.Tensor | None]:
        """What the network sees of a photo: its full-resolution L (H x W) at the working resolution
        (1 x h x w: about input_size**2 pixels, default self.input_size, sides a multiple of the
        network's) and its hints [(x, y, a, b), ...] as hint planes (1 x 3 x h x w; None without
        hints). A ValueError for hints to a model that takes none."""
        H, W = L.shape
        hw = working_size(H, W, input_size or self.input_size, self.multiple)
        ht = None
        if hints:
            if not self.accepts_hints:
                raise ValueError(f"model {self.name!r} does not take color hints")
            ht = hints_tensor(hints, (H, W), hw)
        return resize_plane(L, hw)[None], ht

    def predict_ab(self, L: np.ndarray, hints=None, input_size: int | None = None,
                   spread: bool = True) -> np.ndarray:
        """Full-resolution L (H x W) -> full-resolution ab (2 x H x W, float32).

        With hints, the network sees them; then (spread=True) what the network's colors still
        miss at the hints is spread over their regions along the photo's edges (hints.spread_hints).
        """
        ab = self.predict_small(*self.working_input(L, hints, input_size))
        if hints and spread:
            ab = self.spread(ab, self.spread_plan(L, hints, ab.shape[-2:]))
        return upsample_ab(ab, L.shape)

    @staticmethod
    def spread_plan(L: np.ndarray, hints, size_hw) -> tuple:
        """How hints spread over a photo, for spread(): (the hints [(x, y, a, b)] in full-resolution
        pixels as cells (row, column, a, b) of the h x w output grid size_hw, L on that grid, each
        hint's weight map). Computed once per photo, whatever colors are spread with it."""
        from .hints import hint_weights
        H, W = L.shape
        h, w = size_hw
        cells = [(min(h - 1, int(y * h / H)), min(w - 1, int(x * w / W)), a, b) for x, y, a, b in hints]
        l_small = resize_plane(L, (h, w))
        return cells, l_small, hint_weights(l_small, cells)

    @staticmethod
    def spread(ab: torch.Tensor, plan) -> torch.Tensor:
        """1 x 2 x h x w ab (Lab units, on spread_plan's grid) -> the same with what it still misses
        at the hints spread over their regions along the photo's edges (hints.spread_hints)."""
        from .hints import spread_hints
        cells, l_small, weights = plan
        out = spread_hints(ab[0].float().cpu().numpy(), l_small, cells, weights=weights)
        return torch.from_numpy(out)[None]

    # --- distributions: variations and color suggestions (classification models) ------------
    @property
    def predicts_distribution(self) -> bool:
        """True for models whose head predicts a distribution over ab bins."""
        head = getattr(self.model, "head", None)
        return head is not None and hasattr(head, "bins") and hasattr(head, "decode")

    def logits(self, L: np.ndarray, hints=None, input_size: int | None = None) -> torch.Tensor:
        """The network's raw output for a full-resolution L (H x W) and hints, at the working
        resolution: 1 x K x h x w logits for a classification model (before any decoding)."""
        return self._run(*self.working_input(L, hints, input_size), decode=False)

    @property
    def samples_latent(self) -> bool:
        """True for models that draw variations from a latent code (the VAE-GAN)."""
        return hasattr(self.model, "sample_z")

    def variations(self, image, n: int = 4, seed: int | None = 0, hints=None,
                   input_size: int | None = None, strength: float | None = None) -> list[np.ndarray]:
        """n different plausible colorizations of one photo (uint8 RGB, full resolution).

        A VAE-GAN (colorizer/models/vae_gan.py) decodes n latent codes z ~ N(0, I) (times
        `strength`, 1 by default). Any other classification model runs once, and each variation
        decodes its color distribution with smooth random noise on the logits
        (colorizer/variations.py). The same seed gives the same variations.
        """
        from .variations import DEFAULT_STRENGTH, fresh_seed, sample_logits
        if not self.predicts_distribution and not self.samples_latent:
            raise ValueError(f"model {self.name!r} predicts one color per pixel, not a distribution, "
                             "so it cannot sample variations: pick a classification model such as the default")
        n = int(n)
        if not 1 <= n <= 16:
            raise ValueError(f"the number of variations must lie in 1..16, got {n}")
        L = lightness_of(image)
        l_small, ht = self.working_input(L, hints, input_size)
        head = self.model.head
        if self.samples_latent:
            g = torch.Generator().manual_seed(fresh_seed() if seed is None else int(seed))
            zs = self.model.sample_z(n, g) * (1.0 if strength is None else float(strength))
            outputs = [o.float() for o in self._run(l_small, ht, decode=False, z=zs)]
        else:
            logits = self._run(l_small, ht, decode=False).float()
            outputs = sample_logits(logits, head.bins.float(), n, seed,
                                    DEFAULT_STRENGTH if strength is None else float(strength))
        out, plan = [], None
        with torch.inference_mode():
            for logits in outputs:
                ab = head.decode(logits)
                if hints:
                    plan = plan or self.spread_plan(L, hints, ab.shape[-2:])
                    ab = self.spread(ab, plan)
                out.append(lab.l_ab_to_rgb_uint8(L, upsample_ab(ab, L.shape)))
        return out

    def suggest_colors(self, image, x: float, y: float, k: int = 6, hints=None,
                       input_size: int | None = None) -> list[dict]:
        """The model's most likely colors at pixel (x, y) of the photo, most likely first:
        [{"a", "b", "probability", "hex"}, ...], distinct colors (at least 15 ab apart), each
        shown at the photo's lightness there (hex)."""
        L = lightness_of(image)
        H, W = L.shape
        if not (0 <= x < W and 0 <= y < H):
            raise ValueError(f"point ({x:g}, {y:g}) lies outside the {W} x {H} photo")
        from .hints import ab_to_hex
        light = float(L[int(y), int(x)])
        if self.predicts_distribution:
            logits = self.logits(L, hints, input_size).float()
            head = self.model.head
            if getattr(head, "log_class_weights", None) is not None:  # the plain posterior
                logits = logits - head.log_class_weights.float()[None, :, None, None]
            h, w = logits.shape[-2:]
            p = torch.softmax(logits[0, :, min(h - 1, int(y * h / H)), min(w - 1, int(x * w / W))], 0)
            order = torch.argsort(p, descending=True).tolist()
            bins = head.bins.float()
            chosen = []
            for i in order:
                ab = bins[i]
                if all(float((ab - bins[j]).norm()) >= 15 for j in chosen):
                    chosen.append(i)
                if len(chosen) >= k:
                    break
            return [{"a": float(bins[i, 0]), "b": float(bins[i, 1]), "probability": float(p[i]),
                     "hex": ab_to_hex(light, float(bins[i, 0]), float(bins[i, 1]))} for i in chosen]
        if hasattr(self.model, "suggest_colors"):  # SIGGRAPH17's own suggestion head
            l_small, ht = self.working_input(L, hints, input_size)
            h, w = l_small.shape[-2:]
            xs = (torch.from_numpy(np.array(l_small, dtype=np.float32))[:, None] - lab.L_CENT) / lab.L_NORM
            with torch.inference_mode():
                ab, prob = self.model.suggest_colors(xs, int(y * h / H), int(x * w / W), ht, k)
            return [{"a": float(a), "b": float(b), "probability": float(q),
                     "hex": ab_to_hex(light, float(a), float(b))} for (a, b), q in zip(ab[0].tolist(), prob[0].tolist())]
        raise ValueError(f"model {self.name!r} cannot suggest colors")

    def colorize(self, image, hints=None, input_size: int | None = None, spread: bool = True) -> np.ndarray:
        """Colorize one photo: uint8 H x W x 3 RGB, the same size as the input.

        image: PIL image, numpy array (gray, RGB or RGBA; 8 or 16 bit or float in [0, 1]),
        file path or encoded bytes. hints (models that take them): [(x, y, a, b), ...].
        """
        L = lightness_of(image)
        return lab.l_ab_to_rgb_uint8(L, self.predict_ab(L, hints, input_size, spread))

    def colorize_batch(self, images, input_size: int | None = None, batch_size: int = 16) -> list[np.ndarray]:
        """Colorize several photos; photos that share a working size run through the network together."""
        Ls = [lightness_of(im) for im in images]
        size = input_size or self.input_size
        groups: dict[tuple[int, int], list[int]] = {}
        for i, L in enumerate(Ls):
            groups.setdefault(working_size(*L.shape, size, self.multiple), []).append(i)
        out: list[np.ndarray | None] = [None] * len(Ls)
        for hw, idx in groups.items():
            for s in range(0, len(idx), batch_size):
                chunk = idx[s:s + batch_size]
                ab = self.predict_small(np.stack([resize_plane(Ls[i], hw) for i in chunk]))
                for j, i in enumerate(chunk):
                    out[i] = lab.l_ab_to_rgb_uint8(Ls[i], upsample_ab(ab[j:j + 1], Ls[i].shape))
        return out

    # the names these methods had before they were public (deprecated: older scripts call them);
    # they go through the public names, so that a replaced public method is the one that runs
    def _predict_small(self, l_small, hints=None):
        return self.predict_small(l_small, hints)

    def _working_input(self, L, hints, input_size):
        return self.working_input(L, hints, input_size)

    def _logits(self, L, hints, input_size):
        return self.logits(L, hints, input_size)

    _spread_plan = spread_plan
    _spread = spread
