"""Architectures, one per file, built by name: build_model(arch, **model_args).

torch only (each architecture module is imported on first use).
"""
from __future__ import annotations

import importlib

# arch name -> (module, class)
ARCHITECTURES = {
    "unet": ("unet", "UNet"),
    "backbone_unet": ("backbone_unet", "BackboneUNet"),
    "vae_gan": ("vae_gan", "VAEGAN"),
    "eccv16": ("eccv16", "ECCV16"),
    "siggraph17": ("siggraph17", "SIGGRAPH17"),
}


def build_model(arch: str, **model_args):
    if arch not in ARCHITECTURES:
        raise ValueError(f"unknown architecture {arch!r}: choose one of {', '.join(ARCHITECTURES)}")
    module, cls = ARCHITECTURES[arch]
    model_cls = getattr(importlib.import_module(f".{module}", __name__), cls)
    try:
        return model_cls(**model_args)
    except TypeError as exc:
        raise ValueError(f"bad arguments for architecture {arch!r}: {exc}") from exc
