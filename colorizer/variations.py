"""Diverse colorizations: several different plausible colorings of one photo.

A classification model predicts, for each pixel, a distribution over ab bins; its usual output is
one summary of it (the annealed mean). Sampling each pixel independently would give color noise,
so a variation perturbs the logits with noise that is smooth twice over:
- across colors: the noise is a sum of a few random waves over the ab plane, so neighboring
  bins (similar colors) move together and a whole hue family rises or falls;
- across the photo: each wave's amplitude is one global value plus a coarse random field
  (a few cells per side, bilinearly interpolated), so a region takes one color, not speckles.
Where the model is sure (sky, foliage), the noise barely moves the peak; where it hesitates
(a car, a shirt), the variations pick different modes.

torch only; gradio-free.
"""
from __future__ import annotations

import math
import os
import warnings

import torch
import torch.nn.functional as F

DEFAULT_STRENGTH = 0.8  # logit units: mean pairwise dE2000 about 7 on val photos with the default model
WAVELENGTH = 70.0  # ab units: about the distance between unrelated hues
N_WAVES = 12
GRID = 3  # cells per side of the coarse spatial field


def color_noise(bins: torch.Tensor, size_hw: tuple[int, int], generator: torch.Generator,
                strength: float = DEFAULT_STRENGTH, spatial: float = 0.4) -> torch.Tensor:
    """K x 2 bin centers -> 1 x K x h x w logit noise, smooth across colors and space."""
    h, w = size_hw
    k = bins.shape[0]
    angle = torch.rand(N_WAVES, generator=generator) * 2 * math.pi
    freq = 2 * math.pi / WAVELENGTH * (0.6 + 0.8 * torch.rand(N_WAVES, generator=generator))
    omega = torch.stack([angle.cos(), angle.sin()], 1) * freq[:, None]  # N_WAVES x 2
    phase = torch.rand(N_WAVES, generator=generator) * 2 * math.pi
    basis = torch.cos(bins.float() @ omega.T + phase) * math.sqrt(2.0)  # K x N_WAVES, unit variance
    amp_global = torch.randn(N_WAVES, 1, 1, generator=generator)
    amp_cells = torch.randn(1, N_WAVES, GRID, GRID, generator=generator)
    amp_local = F.interpolate(amp_cells, size=(h, w), mode="bicubic", align_corners=True)[0]
    amp = (amp_global + spatial * amp_local) / math.sqrt((1 + spatial ** 2) * N_WAVES)
    noise = torch.einsum("kj,jhw->khw", basis, amp) * strength
    assert noise.shape == (k, h, w)
    return noise[None]


def fresh_seed() -> int:
    """A random seed, without touching torch's global generator."""
    return int.from_bytes(os.urandom(4), "little") & 0x7FFFFFFF


def sample_logits(logits: torch.Tensor, bins: torch.Tensor, n: int, seed: int | None = 0,
                  strength: float = DEFAULT_STRENGTH) -> list[torch.Tensor]:
    """1 x K x h x w logits -> n perturbed copies (one per variation)."""
    if seed is None:
        seed = fresh_seed()
    g = torch.Generator().manual_seed(int(seed))
    size = tuple(logits.shape[-2:])
    return [logits + color_noise(bins, size, g, strength).to(logits) for _ in range(n)]


def colour_noise(*args, **kwargs) -> torch.Tensor:
    """Deprecated British spelling of `color_noise`."""
    warnings.warn("colour_noise is deprecated, use color_noise", DeprecationWarning, stacklevel=2)
    return color_noise(*args, **kwargs)
