"""The model registry: name -> architecture, weights file, working resolution, metadata.

Our own checkpoints rebuild their architecture from the file ({arch, model_args, state_dict,
meta}); the official Zhang et al. files are plain state dicts of a known architecture. Any other
checkpoint a user trains into the weights folder (`python -m colorizer train --out
weights/NAME.pt`) is listed under its file name too. `default` is an alias for the best shipped
model.
"""
from __future__ import annotations

from dataclasses import dataclass, field, asdict
from pathlib import Path

from .errors import ModelNotFoundError
from .settings import Settings, settings

PACKAGE_DIR = Path(__file__).resolve().parent
DEFAULT_WEIGHTS_DIR = Settings().weights_dir  # the repository's weights/


def weights_dir() -> Path:
    """Where weight files live: $COLORIZER_WEIGHTS_DIR, else the repository's weights/ folder."""
    return settings().weights_dir


@dataclass(frozen=True)
class ModelEntry:
    name: str
    arch: str
    weights: str  # file name inside weights_dir()
    input_size: int = 256
    official: bool = False  # a plain state dict from Zhang et al., fetched with `weights fetch`
    description: str = ""
    summary: str = ""  # one line for menus: which paper's system, trained on what
    trained_on: str = ""
    scores: dict = field(default_factory=dict)  # set name -> {metric: value}

    @property
    def path(self) -> Path:
        return weights_dir() / self.weights

    @property
    def available(self) -> bool:
        return self.path.is_file()

    def as_dict(self) -> dict:
        d = asdict(self)
        d.update(path=str(self.path), available=self.available)
        return d


_ZHANG_SCORES_NOTE = "AMT fooling rate 32.3% (ECCV16 paper, ImageNet)"

REGISTRY: dict[str, ModelEntry] = {}


def register(entry: ModelEntry) -> ModelEntry:
    REGISTRY[entry.name] = entry
    return entry


register(ModelEntry(
    name="eccv16", arch="eccv16", weights="colorization_release_v2-9b330a0b.pth", official=True,
    description="Zhang, Isola, Efros: Colorful Image Colorization (ECCV 2016), official weights; "
                "classification over 313 ab bins, 32 M parameters",
    summary="Zhang et al. ECCV 2016, the authors' weights (ImageNet, 1.3 M photos)",
    trained_on="ImageNet train (1.3 M photos), by the authors",
    scores={"paper": {"note": _ZHANG_SCORES_NOTE}},
))
register(ModelEntry(
    name="siggraph17", arch="siggraph17", weights="siggraph17-df00044c.pth", official=True,
    description="Zhang et al.: Real-Time User-Guided Image Colorization (SIGGRAPH 2017), official "
                "weights; takes optional ab hints",
    summary="Zhang et al. SIGGRAPH 2017 (user-guided), the authors' weights (ImageNet)",
    trained_on="ImageNet train (1.3 M photos), by the authors",
))

# Our shipped models; scores from `python -m colorizer evaluate` (see weights/README.md).
register(ModelEntry(
    name="lite0-cls", arch="backbone_unet", weights="lite0_cls.pt", input_size=256,
    description="U-Net on an ImageNet-pretrained EfficientNet-Lite0 encoder, classification over "
                "313 ab bins with class rebalancing and annealed-mean decoding",
    summary="our EfficientNet-Lite0 U-Net, 313-bin classification (version-1 photos, 14k)",
    trained_on="../shared/data/train (imagenette, imagenet200x5, bsds500_trainval, flowers128: "
               "14,082 photos), 26 epochs of 4,000 random 128 px crops, 82 minutes on 2 CPU cores",
    scores={  # python -m colorizer evaluate ... (docs/results/lite0_cls_eval.json); gray baseline in ()
        "val/imagenette_val1000": {"psnr": 22.41, "ssim": 0.908, "de2000": 9.59, "gray_de2000": 10.51,
                                   "colorfulness_ratio": 0.94},
        "test/kodak24": {"psnr": 21.04, "ssim": 0.917, "de2000": 11.79, "gray_de2000": 12.12,
                         "colorfulness_ratio": 0.93},
        "test/bsds500_test": {"psnr": 21.22, "ssim": 0.904, "de2000": 11.98, "gray_de2000": 13.01,
                              "colorfulness_ratio": 0.93},
        "test/mcmaster18": {"psnr": 18.04, "ssim": 0.777, "de2000": 14.14, "gray_de2000": 15.64,
                            "colorfulness_ratio": 0.65},
    },
))

# python -m colorizer evaluate ... (docs/results/lite0_scene_eval.json); gray baseline in ()
SCENE_SCORES = {
    "val/imagenet_val": {"psnr": 22.94, "gray_psnr": 22.39, "ssim": 0.929, "de2000": 10.89,
                         "gray_de2000": 11.47, "colorfulness_ratio": 0.73, "below_half_colorfulness": 0.24},
    "test/kodak24": {"psnr": 22.48, "gray_psnr": 22.00, "ssim": 0.931, "de2000": 11.64,
                     "gray_de2000": 12.12, "colorfulness_ratio": 0.75, "below_half_colorfulness": 0.42},
    "test/bsds500_test": {"psnr": 22.76, "gray_psnr": 21.54, "ssim": 0.934, "de2000": 11.21,
                          "gray_de2000": 13.01, "colorfulness_ratio": 0.75, "below_half_colorfulness": 0.27},
    "test/mcmaster18": {"psnr": 18.84, "gray_psnr": 17.67, "ssim": 0.782, "de2000": 13.83,
                        "gray_de2000": 15.64, "colorfulness_ratio": 0.56, "below_half_colorfulness": 0.56},
}

register(ModelEntry(
    name="lite0-hint", arch="backbone_unet", weights="lite0_hint.pt", input_size=256,
    description="lite0-cls fine-tuned to take color hints and to decode accurately: EfficientNet-Lite0 "
                "U-Net, 313-bin classification, hint inputs (a, b, mask), variations and color suggestions",
    summary="lite0-cls taught to take color hints and decode accurately (version-1 photos, 14k)",
    trained_on="../shared/data/train (14,082 photos): lite0-cls, then fine-tuned with random hints "
               "sampled from the truth and a loss on the decoded colors, on 128 px and then 224 px "
               "crops (see weights/README.md)",
    scores={  # python -m colorizer evaluate ... (docs/results/lite0_hint_eval.json); gray baseline in ()
        "val/imagenette_val1000": {"psnr": 23.61, "gray_psnr": 22.81, "ssim": 0.932, "de2000": 9.41,
                                   "gray_de2000": 10.51, "colorfulness_ratio": 0.78},
        "test/kodak24": {"psnr": 22.12, "gray_psnr": 22.00, "ssim": 0.930, "de2000": 11.22,
                         "gray_de2000": 12.12, "colorfulness_ratio": 0.81},
        "test/bsds500_test": {"psnr": 22.70, "gray_psnr": 21.54, "ssim": 0.933, "de2000": 11.38,
                              "gray_de2000": 13.01, "colorfulness_ratio": 0.73},
        "test/mcmaster18": {"psnr": 18.82, "gray_psnr": 17.67, "ssim": 0.790, "de2000": 13.92,
                            "gray_de2000": 15.64, "colorfulness_ratio": 0.54},
    },
))

register(ModelEntry(
    name="lite0-scene", arch="backbone_unet", weights="lite0_scene.pt", input_size=256,
    description="lite0-hint with a scene-level context (whole-photo features that scale and shift the "
                "decoder's), retrained on the diverse version-2 photo pool: EfficientNet-Lite0 U-Net, "
                "313-bin classification, hint inputs, variations and color suggestions",
    summary="our best: lite0-hint + scene context, on the diverse version-2 pool (22k photos)",
    trained_on="../shared/data/train version 2 (22,320 photos of ten folders, each given its share): "
               "lite0-hint + scene context, 128 px then 176 px crops (see weights/README.md)",
    scores=SCENE_SCORES,
))

# The seed papers' own systems, trained here for comparison (issue 21; weights/README.md has
# their cards). Scores: `python -m colorizer evaluate ... --models ...` on val/imagenet_val and the
# test sets (docs/results/seed_eval_part1.json, seed_eval_part2.json); gray baseline beside each.
SEED_SCORES: dict[str, dict] = {
    "vae-gan": {
        "val/imagenet_val": {"psnr": 22.65, "gray_psnr": 22.39, "ssim": 0.924, "de2000": 10.76, "gray_de2000": 11.47, "colorfulness_ratio": 0.81, "below_half_colorfulness": 0.24},
        "test/kodak24": {"psnr": 22.6, "gray_psnr": 22.0, "ssim": 0.931, "de2000": 11.23, "gray_de2000": 12.12, "colorfulness_ratio": 0.69, "below_half_colorfulness": 0.46},
        "test/bsds500_test": {"psnr": 22.39, "gray_psnr": 21.54, "ssim": 0.931, "de2000": 11.22, "gray_de2000": 13.01, "colorfulness_ratio": 0.74, "below_half_colorfulness": 0.3},
        "test/mcmaster18": {"psnr": 18.23, "gray_psnr": 17.67, "ssim": 0.777, "de2000": 14.16, "gray_de2000": 15.64, "colorfulness_ratio": 0.61, "below_half_colorfulness": 0.5},
    },
    "autoencoder": {
        "val/imagenet_val": {"psnr": 21.73, "gray_psnr": 22.39, "ssim": 0.926, "de2000": 12.62, "gray_de2000": 11.47, "colorfulness_ratio": 0.77, "below_half_colorfulness": 0.19},
        "test/kodak24": {"psnr": 21.3, "gray_psnr": 22.0, "ssim": 0.938, "de2000": 12.9, "gray_de2000": 12.12, "colorfulness_ratio": 0.86, "below_half_colorfulness": 0.21},
        "test/bsds500_test": {"psnr": 21.63, "gray_psnr": 21.54, "ssim": 0.93, "de2000": 13.3, "gray_de2000": 13.01, "colorfulness_ratio": 0.83, "below_half_colorfulness": 0.17},
        "test/mcmaster18": {"psnr": 19.06, "gray_psnr": 17.67, "ssim": 0.792, "de2000": 13.74, "gray_de2000": 15.64, "colorfulness_ratio": 0.48, "below_half_colorfulness": 0.61},
    },
    "vgg16-unet": {
        "val/imagenet_val": {"psnr": 20.48, "gray_psnr": 22.39, "ssim": 0.909, "de2000": 14.59, "gray_de2000": 11.47, "colorfulness_ratio": 0.85, "below_half_colorfulness": 0.12},
        "test/kodak24": {"psnr": 21.06, "gray_psnr": 22.0, "ssim": 0.933, "de2000": 12.91, "gray_de2000": 12.12, "colorfulness_ratio": 0.84, "below_half_colorfulness": 0.08},
        "test/bsds500_test": {"psnr": 20.74, "gray_psnr": 21.54, "ssim": 0.916, "de2000": 15.26, "gray_de2000": 13.01, "colorfulness_ratio": 0.84, "below_half_colorfulness": 0.1},
        "test/mcmaster18": {"psnr": 18.99, "gray_psnr": 17.67, "ssim": 0.764, "de2000": 14.84, "gray_de2000": 15.64, "colorfulness_ratio": 0.51, "below_half_colorfulness": 0.5},
    },
    "resnet18-unet": {
        "val/imagenet_val": {"psnr": 21.56, "gray_psnr": 22.39, "ssim": 0.922, "de2000": 12.88, "gray_de2000": 11.47, "colorfulness_ratio": 0.83, "below_half_colorfulness": 0.15},
        "test/kodak24": {"psnr": 21.11, "gray_psnr": 22.0, "ssim": 0.928, "de2000": 12.7, "gray_de2000": 12.12, "colorfulness_ratio": 0.98, "below_half_colorfulness": 0.12},
        "test/bsds500_test": {"psnr": 21.58, "gray_psnr": 21.54, "ssim": 0.923, "de2000": 13.6, "gray_de2000": 13.01, "colorfulness_ratio": 0.94, "below_half_colorfulness": 0.1},
        "test/mcmaster18": {"psnr": 18.13, "gray_psnr": 17.67, "ssim": 0.782, "de2000": 16.04, "gray_de2000": 15.64, "colorfulness_ratio": 0.5, "below_half_colorfulness": 0.5},
    },
}

register(ModelEntry(
    name="vae-gan", arch="vae_gan", weights="vae_gan.pt", input_size=256,
    description="conditional VAE-GAN colorizer after \"Image Coloring Using Machine Learning\": "
                "lite0-scene's U-Net given a latent code z (FiLM), a posterior encoder q(z | L, ab) "
                "in training, KL to N(0, I) and a patch discriminator on prior samples; colorize "
                "uses z = 0, variations draw z ~ N(0, I)",
    summary="VAE-GAN (Image Coloring Using ML): different z, different colorings; from lite0-scene",
    trained_on="../shared/data/train version 2 (22,320 photos): initialized from lite0-scene, "
               "fine-tuned with the VAE and adversarial terms (see weights/README.md)",
    scores=SEED_SCORES.get("vae-gan", {}),
))
register(ModelEntry(
    name="autoencoder", arch="unet", weights="autoencoder.pt", input_size=256,
    description="the plain convolutional autoencoder with skip connections (U-Net, no pretrained "
                "encoder) of the landscape-colorization paper, 313-bin classification head",
    summary="plain U-Net autoencoder from scratch, on landscapes and scenes (intel, sun8, bsds500)",
    trained_on="../shared/data/train intel_scenes, sun8_scenes, bsds500_trainval, from scratch, "
               "about one CPU hour (see weights/README.md)",
    scores=SEED_SCORES.get("autoencoder", {}),
))
register(ModelEntry(
    name="vgg16-unet", arch="backbone_unet", weights="vgg16_unet.pt", input_size=256,
    description="U-Net on a VGG-16 encoder (configuration D) as in the VGG-16 colorization paper, "
                "trained from scratch (no ImageNet weights can be had here), 313-bin classification",
    summary="VGG-16 U-Net from scratch (no ImageNet weights here), whole version-2 pool, ~1 CPU hour",
    trained_on="../shared/data/train version 2 (22,320 photos), from scratch, about one CPU hour",
    scores=SEED_SCORES.get("vgg16-unet", {}),
))
register(ModelEntry(
    name="resnet18-unet", arch="backbone_unet", weights="resnet18_unet.pt", input_size=256,
    description="U-Net on a ResNet-18 encoder as in the ResNet-18 colorization paper, trained from "
                "scratch (no ImageNet weights can be had here), 313-bin classification",
    summary="ResNet-18 U-Net from scratch (no ImageNet weights here), whole version-2 pool, ~1 CPU hour",
    trained_on="../shared/data/train version 2 (22,320 photos), from scratch, about one CPU hour",
    scores=SEED_SCORES.get("resnet18-unet", {}),
))

DEFAULT_MODEL = "lite0-scene"
ALIASES = {"default": DEFAULT_MODEL}


def _discovered() -> dict[str, ModelEntry]:
    """Checkpoints in the weights folder that no registry entry names (a user's own)."""
    known = {e.weights for e in REGISTRY.values()}
    found = {}
    d = weights_dir()
    if d.is_dir():
        for p in sorted(d.glob("*.pt")):
            if p.name not in known and p.stem not in REGISTRY and p.stem not in ALIASES:
                found[p.stem] = ModelEntry(name=p.stem, arch="(from file)", weights=p.name,
                                           description=f"checkpoint {p.name} found in {d}")
    return found


def all_entries() -> dict[str, ModelEntry]:
    return {**REGISTRY, **_discovered()}


def shorten(text: str, limit: int = 60) -> str:
    """A user's text cut to `limit` characters for a message (an ellipsis marks the cut)."""
    return text if len(text) <= limit else text[:limit - 3] + "..."


def resolve(name: str) -> ModelEntry:
    """Registry entry for a name or alias; ModelNotFoundError with the choices otherwise."""
    if not isinstance(name, str) or not name.strip():
        raise ModelNotFoundError("a model name is needed: `python -m colorizer models` lists them")
    name = name.strip()
    entries = all_entries()
    target = ALIASES.get(name, name)
    if target in entries:
        return entries[target]
    choices = ", ".join(list(ALIASES) + list(entries))
    raise ModelNotFoundError(
        f"unknown model {shorten(name)!r}: known models are {choices}. "
        "`python -m colorizer models` shows which have their weights present."
    )


def list_models(include_missing: bool = False) -> list[dict]:
    """Models as dicts (name, arch, description, path, available, input_size, scores, ...).

    By default only models whose weights are present; include_missing=True lists all.
    """
    rows = []
    for e in all_entries().values():
        if e.available or include_missing:
            d = e.as_dict()
            d["aliases"] = [a for a, t in ALIASES.items() if t == e.name]
            rows.append(d)
    return rows
