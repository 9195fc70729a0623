"""colorizer: bring black-and-white photos back to color.

    import colorizer
    c = colorizer.load_colorizer()          # the shipped default model
    rgb = c.colorize("old_photo.jpg")       # uint8 H x W x 3, same size as the input
    colorizer.list_models()                 # models whose weights are present
"""
from __future__ import annotations

from .errors import ColorizerError, ImageError, ModelNotFoundError
from .pipeline import Colorizer, load_image
from .registry import list_models, resolve, DEFAULT_MODEL

__all__ = ["load_colorizer", "list_models", "Colorizer", "load_image", "ColorizerError",
           "ImageError", "ModelNotFoundError", "WeightsError", "DEFAULT_MODEL"]
__version__ = "0.1.0"


def __getattr__(name):
    if name == "WeightsError":
        from .weights import WeightsError
        return WeightsError
    raise AttributeError(name)


def load_colorizer(name: str = "default", device=None, input_size: int | None = None) -> Colorizer:
    """Load a registered model by name ('default' is the best shipped model).

    device: 'cpu', 'cuda', ... (default: CUDA when available, else CPU). input_size: the working
    resolution the network sees (default: the model's own, usually 256). The network is made
    ready for fast inference (BatchNorm folded into the convolutions, channels_last layout:
    colorizer/models/inference.py), so it is not meant for further training.
    Raises ModelNotFoundError for unknown names and WeightsError for missing or damaged files,
    with a message that says what to do.
    """
    import torch
    from .models.inference import optimize_for_inference
    from .weights import WeightsError, load_checkpoint, load_official

    entry = resolve(name)
    if device is None:
        device = "cuda" if torch.cuda.is_available() else "cpu"
    if not entry.available:
        if entry.official:
            raise WeightsError(
                f"the weights of {entry.name!r} are not in {entry.path.parent}: get them with "
                f"`python -m colorizer weights fetch {entry.name}` (needs internet), or place "
                f"{entry.weights} there by hand")
        raise WeightsError(
            f"the weights file of model {entry.name!r} is missing ({entry.path}). In a git clone, "
            "`git lfs pull` fetches shipped weights; or train one with `python -m colorizer train`.")
    if entry.official:
        model = load_official(entry.name, entry.path, device=device)
        info = {"arch": entry.arch, "meta": {}}
    else:
        model, info = load_checkpoint(entry.path, device=device)
    size = input_size or info.get("meta", {}).get("input_size") or entry.input_size
    return Colorizer(optimize_for_inference(model), name=entry.name, input_size=size, device=device,
                     info=info)
