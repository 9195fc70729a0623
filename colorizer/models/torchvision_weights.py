"""Shared by the ResNet-18 and VGG-16 encoders: gray input for ImageNet-trained weights, and
loading of torchvision-format state dicts (3-channel RGB first conv folded into 1 gray channel).

Gray folding
------------
torchvision's ImageNet models take RGB in [0, 1] normalized per channel: z_c = (x_c - m_c) / s_c.
Our input is l_norm = (L - L_CENT) / L_NORM; its gray level is u = L / 100 and a gray image has
x_R = x_G = x_B = u. The encoders feed their first conv the one-channel

    v = (u - GRAY_MEAN) / GRAY_STD  =  mean_c z_c,
    GRAY_STD = 1 / mean_c(1 / s_c),  GRAY_MEAN = GRAY_STD * mean_c(m_c / s_c),

so that z_c = (GRAY_STD / s_c) * v + (GRAY_MEAN - m_c) / s_c. A first conv with RGB filters W_c
(64 x 3 x k x k) thus gives on the replicated gray image

    sum_c W_c * z_c = W_gray * v + D * 1,
    W_gray = GRAY_STD * sum_c W_c / s_c,       D = sum_c W_c * (GRAY_MEAN - m_c) / s_c

(* is the convolution, D a 64 x 1 x k x k kernel). Where the kernel lies inside the image, D * 1
is the per-output-channel constant sum(D), folded into what follows the conv: the conv bias
(VGG) or the running mean of the BatchNorm after it (ResNet: running_mean - sum(D); in training
mode BatchNorm removes any per-channel constant by itself). This is exact (to float rounding)
everywhere the conv's window lies inside the image.

Within (kernel // 2) pixels of the image edge the RGB network pads z_c with 0, i.e. each channel
with its own mean m_c, and the term D * 1 only sums the taps inside the image; a single gray
channel cannot reproduce that, since D is not a function of W_gray and state-dict names are kept
exactly torchvision's (no room for an extra kernel). The gray network pads v with 0, i.e. with the
gray level GRAY_MEAN, and differs there by the sum of D over the taps that fall outside the image.
D vanishes for filters whose three color slices are equal (sum_c (GRAY_MEAN - m_c) / s_c = 0 by
the choice of GRAY_MEAN), so luminance filters are folded exactly even at the border; only the
color-opponent part of the filters differs, and only in that border band.

torch only; reads weight files only when given a path.
"""
from __future__ import annotations

import os
from collections.abc import Mapping

import torch
from torch import nn

from ..lab import L_CENT, L_NORM
from .state_dicts import describe_mismatch

# torchvision's ImageNet normalization (RGB in [0, 1])
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
GRAY_STD = 1.0 / (sum(1.0 / s for s in IMAGENET_STD) / 3.0)
GRAY_MEAN = GRAY_STD * sum(m / s for m, s in zip(IMAGENET_MEAN, IMAGENET_STD)) / 3.0


def gray_input(l_norm: torch.Tensor) -> torch.Tensor:
    """l_norm = (L - L_CENT) / L_NORM -> v = channel mean of the ImageNet-normalized gray image."""
    u = (l_norm * L_NORM + L_CENT) / 100.0  # gray level in [0, 1]
    return (u - GRAY_MEAN) / GRAY_STD


def fold_rgb_conv(weight: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """RGB first-conv weight (O x 3 x k x k) -> (gray weight O x 1 x k x k, offset O).

    The gray conv on gray_input(l_norm) plus `offset` equals the RGB conv on the replicated,
    ImageNet-normalized image wherever the kernel lies inside the image (see the module doc).
    Computed in float64, returned in float32 (or the weight's dtype if wider).
    """
    w = weight.detach().double()
    mean = torch.tensor(IMAGENET_MEAN, dtype=torch.float64).view(1, 3, 1, 1)
    std = torch.tensor(IMAGENET_STD, dtype=torch.float64).view(1, 3, 1, 1)
    w_gray = GRAY_STD * (w / std).sum(1, keepdim=True)
    d = (w * (GRAY_MEAN - mean) / std).sum(1)  # O x k x k
    offset = d.sum((1, 2))
    dtype = torch.promote_types(weight.dtype, torch.float32)
    return w_gray.to(dtype), offset.to(dtype)


def check_state_dict(module: nn.Module, sd: Mapping, arch: str, example: str) -> dict:
    """Compare a (folded, head-free) torchvision state dict with module's own; raise ValueError
    naming missing / unexpected / mis-shaped keys. BatchNorm `num_batches_tracked` buffers may be
    absent (older torchvision files): the module's own values are kept. Returns a dict ready for
    module.load_state_dict(strict=True)."""
    own = module.state_dict()
    sd = dict(sd)
    for k in own:
        if k.endswith("num_batches_tracked") and k not in sd:
            sd[k] = own[k]
    problem = describe_mismatch(own, sd, limit=None)
    if problem:
        raise ValueError(f"not a torchvision {arch} state dict (e.g. {example}): {problem}")
    return sd


def as_state_dict(obj, arch: str, example: str, where: str = "the argument") -> dict:
    """Check that obj is a mapping of names to tensors (a state dict)."""
    expected = f"a torchvision {arch} state dict, e.g. {example}"
    if not isinstance(obj, Mapping):
        raise ValueError(f"{where} holds a {type(obj).__name__}, expected {expected}")
    not_tensor = [str(k) for k, v in obj.items() if not isinstance(k, str) or not torch.is_tensor(v)]
    if not_tensor:
        raise ValueError(f"{where} is not a state dict (entries that are not name -> tensor: "
                         f"{', '.join(not_tensor[:5])}); expected {expected}")
    return dict(obj)


def load_state_dict_file(path, arch: str, example: str) -> dict:
    """torch.load a torchvision-format weights file (weights_only) and check it is a state dict."""
    path = os.fspath(path)
    expected = f"a torchvision {arch} state dict, e.g. {example}"
    if not os.path.isfile(path):
        raise FileNotFoundError(f"no such weights file: {path!r} (expected {expected})")
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # not a torch file, or a pickle that is more than tensors
        raise ValueError(f"could not read {path!r} as {expected}: {exc}") from exc
    return as_state_dict(obj, arch, example, where=repr(path))


def first_conv_rgb(sd: dict, key: str, module: nn.Module, arch: str, example: str) -> torch.Tensor:
    """The RGB first-conv weight of a torchvision state dict, checked against module's gray one."""
    gray = tuple(module.state_dict()[key].shape)
    expected = (gray[0], 3) + gray[2:]
    if key not in sd:
        raise ValueError(f"not a torchvision {arch} state dict (e.g. {example}): missing keys: {key}")
    w = sd[key]
    if tuple(w.shape) != expected:
        raise ValueError(
            f"not a torchvision {arch} state dict (e.g. {example}): wrong shapes: {key} "
            f"{tuple(w.shape)} (expected {expected}, the RGB first conv)"
        )
    return w
