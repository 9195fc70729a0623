"""The model registry, the one place that says which models there are and what is known of each:
name -> architecture, weights file, where official weights are downloaded from (URL, sha256,
size), working resolution, descriptions, and which results file its scores come from.

Our own checkpoints rebuild their architecture from the file ({arch, model_args, state_dict,
meta}); the official Zhang et al. files are plain state dicts of a known architecture. Any other
checkpoint a user trains into the weights folder (`python -m colorizer train --out
weights/NAME.pt`) is listed under its file name too. `default` is an alias for the best shipped
model. Scores are not typed in here: they are read, when asked for, from the JSON files that
`python -m colorizer evaluate --json` wrote into docs/results (a model without one has none).

Standard library only (no torch): it reads the weights folder's listing and docs/results.
"""
from __future__ import annotations

import functools
import json
from dataclasses import dataclass, asdict
from pathlib import Path

from .errors import ModelNotFoundError
from .settings import REPO_DIR, Settings, settings

PACKAGE_DIR = Path(__file__).resolve().parent
DEFAULT_WEIGHTS_DIR = Settings().weights_dir  # the repository's weights/
RESULTS_DIR = REPO_DIR / "docs" / "results"  # evaluation results, one JSON file per run


def weights_dir() -> Path:
    """Where weight files live: $COLORIZER_WEIGHTS_DIR, else the repository's weights/ folder."""
    return settings().weights_dir


@dataclass(frozen=True)
class WeightsSource:
    """Where a weights file is published and what it must be (checked after each download)."""
    url: str
    sha256: str
    bytes: int


@dataclass(frozen=True)
class ResultsFile:
    """A JSON file of docs/results written by `python -m colorizer evaluate --json`: one model's
    ({"sets": ...}) or, with `model`, that model's part of a comparison ({"models": {NAME: ...}})."""
    file: str  # name inside RESULTS_DIR
    model: str | None = None

    @property
    def path(self) -> Path:
        return RESULTS_DIR / self.file

    def set_means(self) -> dict[str, dict]:
        """Set name ("val/imagenet_val": a folder's last two parts) -> its mean row; {} without the file."""
        return _set_means(self.path, self.model)


@functools.lru_cache(maxsize=None)
def _set_means_cached(path: str, mtime_ns: int, model: str | None) -> dict[str, dict]:
    with open(path, encoding="utf-8") as f:
        data = json.load(f)
    if model is not None:
        data = data.get("models", {}).get(model, {})
    return {"/".join(Path(folder).parts[-2:]): dict(row.get("mean", {}))
            for folder, row in data.get("sets", {}).items()}


def _set_means(path: Path, model: str | None) -> dict[str, dict]:
    try:
        mtime = path.stat().st_mtime_ns
    except OSError:
        return {}
    return _set_means_cached(str(path), mtime, model)


# The gray input scored as a model: the baseline printed beside each model's PSNR and dE2000.
GRAY_BASELINES = (ResultsFile("seed_eval_part2.json", model="gray"), ResultsFile("gray_v1_eval.json", model="gray"))

# (metric name in the registry, key in an evaluation row, digits kept)
_METRICS = (("psnr", "psnr", 2), ("ssim", "ssim", 3), ("de2000", "de2000", 2),
            ("colorfulness_ratio", "colorfulness_ratio", 2), ("below_half_colorfulness", "dull_share", 2))
_BASELINE_METRICS = (("gray_psnr", "psnr", 2), ("gray_de2000", "de2000", 2))
_ORDER = ("psnr", "gray_psnr", "ssim", "de2000", "gray_de2000", "colorfulness_ratio", "below_half_colorfulness")


@dataclass(frozen=True)
class SetScores:
    """A model's mean scores on one photo set, and the files they were read from."""
    set_name: str
    metrics: tuple[tuple[str, float], ...]  # (name, value) in the order they are shown
    file: str  # the results file of the model's scores
    baseline_file: str | None = None  # the results file of the gray baseline (gray_*), if any

    def as_dict(self) -> dict[str, float]:
        return dict(self.metrics)


def read_scores(results: ResultsFile | None) -> dict[str, SetScores] | None:
    """A model's scores per set, read from its results file (None: no file named, or not there)."""
    if results is None:
        return None
    means = results.set_means()
    if not means:
        return None
    baselines = [(b, b.set_means()) for b in GRAY_BASELINES]
    out = {}
    for set_name, row in means.items():
        got = {name: round(float(row[key]), nd) for name, key, nd in _METRICS if row.get(key) is not None}
        base_file = None
        for b, b_means in baselines:
            if set_name in b_means:
                base = b_means[set_name]
                got.update({name: round(float(base[key]), nd) for name, key, nd in _BASELINE_METRICS
                            if base.get(key) is not None})
                base_file = b.file
                break
        metrics = tuple((k, got[k]) for k in _ORDER if k in got)
        out[set_name] = SetScores(set_name, metrics, results.file, base_file)
    return out


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
    source: WeightsSource | None = None  # where the weights file is downloaded from (official ones)
    results: ResultsFile | None = None  # where its scores come from (docs/results)
    paper_note: str = ""  # what the paper reports, for models we did not evaluate here

    @property
    def path(self) -> Path:
        return weights_dir() / self.weights

    @property
    def available(self) -> bool:
        return self.path.is_file()

    @property
    def set_scores(self) -> dict[str, SetScores] | None:
        """Scores per set with the files they came from (None without a results file)."""
        return read_scores(self.results)

    @property
    def scores(self) -> dict[str, dict[str, float]] | None:
        """Set name -> {metric: value}, read from the model's results file (None without one)."""
        sets = self.set_scores
        return None if sets is None else {k: v.as_dict() for k, v in sets.items()}

    def as_dict(self) -> dict:
        d = asdict(self)
        d.update(path=str(self.path), available=self.available, scores=self.scores,
                 scores_file=str(self.results.path) if self.results and self.scores is not None else None)
        return d


REGISTRY: dict[str, ModelEntry] = {}


def register(entry: ModelEntry) -> ModelEntry:
    REGISTRY[entry.name] = entry
    return entry


# --- official weights of Zhang et al. (ECCV 2016, SIGGRAPH 2017) -------------------------------
# The released files are plain state dicts (not our {arch, model_args, state_dict, meta}
# checkpoints) for colorizer.models.eccv16.ECCV16 and colorizer.models.siggraph17.SIGGRAPH17.
# Released by the authors under the BSD-2-Clause license (richzhang/colorization).
_ZHANG_URL = "https://colorizers.s3.us-east-2.amazonaws.com/"

register(ModelEntry(
    name="eccv16", arch="eccv16", weights="colorization_release_v2-9b330a0b.pth", official=True,
    description="Zhang, Isola, Efros: Colorful Image Colorization (ECCV 2016), official weights; "
                "classification over 313 ab bins, 32 M parameters",
    summary="Zhang et al. ECCV 2016, the authors' weights (ImageNet, 1.3 M photos)",
    trained_on="ImageNet train (1.3 M photos), by the authors",
    source=WeightsSource(url=_ZHANG_URL + "colorization_release_v2-9b330a0b.pth", bytes=128976165,
                         sha256="9b330a0bae53f4ded77b1e23defbf78beaa09c10ebc4c4999e8e4f4a160b93f9"),
    paper_note="AMT fooling rate 32.3% (ECCV16 paper, ImageNet)",
))
register(ModelEntry(
    name="siggraph17", arch="siggraph17", weights="siggraph17-df00044c.pth", official=True,
    description="Zhang et al.: Real-Time User-Guided Image Colorization (SIGGRAPH 2017), official "
                "weights; takes optional ab hints",
    summary="Zhang et al. SIGGRAPH 2017 (user-guided), the authors' weights (ImageNet)",
    trained_on="ImageNet train (1.3 M photos), by the authors",
    source=WeightsSource(url=_ZHANG_URL + "siggraph17-df00044c.pth", bytes=136787426,
                         sha256="df00044c0a4d7c3edcecf6f75437ce346a66e7a42612d9b968e1a7e17dbc6f66"),
))

# Our shipped models (weights/README.md has their cards); scores from `python -m colorizer
# evaluate ... --json docs/results/FILE` on the validation and test sets.
register(ModelEntry(
    name="lite0-cls", arch="backbone_unet", weights="lite0_cls.pt", input_size=256,
    description="U-Net on an ImageNet-pretrained EfficientNet-Lite0 encoder, classification over "
                "313 ab bins with class rebalancing and annealed-mean decoding",
    summary="our EfficientNet-Lite0 U-Net, 313-bin classification (version-1 photos, 14k)",
    trained_on="../shared/data/train (imagenette, imagenet200x5, bsds500_trainval, flowers128: "
               "14,082 photos), 26 epochs of 4,000 random 128 px crops, 82 minutes on 2 CPU cores",
    results=ResultsFile("lite0_cls_eval.json"),
))
register(ModelEntry(
    name="lite0-hint", arch="backbone_unet", weights="lite0_hint.pt", input_size=256,
    description="lite0-cls fine-tuned to take color hints and to decode accurately: EfficientNet-Lite0 "
                "U-Net, 313-bin classification, hint inputs (a, b, mask), variations and color suggestions",
    summary="lite0-cls taught to take color hints and decode accurately (version-1 photos, 14k)",
    trained_on="../shared/data/train (14,082 photos): lite0-cls, then fine-tuned with random hints "
               "sampled from the truth and a loss on the decoded colors, on 128 px and then 224 px "
               "crops (see weights/README.md)",
    results=ResultsFile("lite0_hint_eval.json"),
))
register(ModelEntry(
    name="lite0-scene", arch="backbone_unet", weights="lite0_scene.pt", input_size=256,
    description="lite0-hint with a scene-level context (whole-photo features that scale and shift the "
                "decoder's), retrained on the diverse version-2 photo pool: EfficientNet-Lite0 U-Net, "
                "313-bin classification, hint inputs, variations and color suggestions",
    summary="our best: lite0-hint + scene context, on the diverse version-2 pool (22k photos)",
    trained_on="../shared/data/train version 2 (22,320 photos of ten folders, each given its share): "
               "lite0-hint + scene context, 128 px then 176 px crops (see weights/README.md)",
    results=ResultsFile("lite0_scene_eval.json"),
))

# The seed papers' own systems, trained here for comparison (issue 21; weights/README.md has
# their cards); scored by `python -m colorizer evaluate ... --models ...` on val/imagenet_val and
# the test sets, two runs: seed_eval_part1.json and seed_eval_part2.json.
register(ModelEntry(
    name="vae-gan", arch="vae_gan", weights="vae_gan.pt", input_size=256,
    description="conditional VAE-GAN colorizer after \"Image Coloring Using Machine Learning\": "
                "lite0-scene's U-Net given a latent code z (FiLM), a posterior encoder q(z | L, ab) "
                "in training, KL to N(0, I) and a patch discriminator on prior samples; colorize "
                "uses z = 0, variations draw z ~ N(0, I)",
    summary="VAE-GAN (Image Coloring Using ML): different z, different colorings; from lite0-scene",
    trained_on="../shared/data/train version 2 (22,320 photos): initialized from lite0-scene, "
               "fine-tuned with the VAE and adversarial terms (see weights/README.md)",
    results=ResultsFile("seed_eval_part2.json", model="vae-gan"),
))
register(ModelEntry(
    name="autoencoder", arch="unet", weights="autoencoder.pt", input_size=256,
    description="the plain convolutional autoencoder with skip connections (U-Net, no pretrained "
                "encoder) of the landscape-colorization paper, 313-bin classification head",
    summary="plain U-Net autoencoder from scratch, on landscapes and scenes (intel, sun8, bsds500)",
    trained_on="../shared/data/train intel_scenes, sun8_scenes, bsds500_trainval, from scratch, "
               "about one CPU hour (see weights/README.md)",
    results=ResultsFile("seed_eval_part1.json", model="autoencoder"),
))
register(ModelEntry(
    name="vgg16-unet", arch="backbone_unet", weights="vgg16_unet.pt", input_size=256,
    description="U-Net on a VGG-16 encoder (configuration D) as in the VGG-16 colorization paper, "
                "trained from scratch (no ImageNet weights can be had here), 313-bin classification",
    summary="VGG-16 U-Net from scratch (no ImageNet weights here), whole version-2 pool, ~1 CPU hour",
    trained_on="../shared/data/train version 2 (22,320 photos), from scratch, about one CPU hour",
    results=ResultsFile("seed_eval_part1.json", model="vgg16-unet"),
))
register(ModelEntry(
    name="resnet18-unet", arch="backbone_unet", weights="resnet18_unet.pt", input_size=256,
    description="U-Net on a ResNet-18 encoder as in the ResNet-18 colorization paper, trained from "
                "scratch (no ImageNet weights can be had here), 313-bin classification",
    summary="ResNet-18 U-Net from scratch (no ImageNet weights here), whole version-2 pool, ~1 CPU hour",
    trained_on="../shared/data/train version 2 (22,320 photos), from scratch, about one CPU hour",
    results=ResultsFile("seed_eval_part2.json", model="resnet18-unet"),
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
    """The registered models, then the user's checkpoints found in the weights folder."""
    return {**REGISTRY, **_discovered()}


def entries(include_missing: bool = True) -> list[ModelEntry]:
    """Every model (registered and found); include_missing=False: only those whose weights are present."""
    return [e for e in all_entries().values() if include_missing or e.available]


def names(include_missing: bool = True) -> list[str]:
    """The models' names, in the registry's order (what the CLI and the app offer)."""
    return [e.name for e in entries(include_missing)]


def official_names() -> list[str]:
    """Models whose weights are published files that `weights fetch` downloads."""
    return [e.name for e in REGISTRY.values() if e.source is not None]


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
    for e in entries(include_missing):
        d = e.as_dict()
        d["aliases"] = [a for a, t in ALIASES.items() if t == e.name]
        rows.append(d)
    return rows
