"""Shared test fixtures. Tests that need ../shared/data skip where it does not exist (a user's clone)."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
SHARED = Path(os.environ.get("COLORIZER_SHARED", REPO.parent / "shared"))


@pytest.fixture(scope="module")
def one_torch_thread():
    """Small tensors: one thread is faster, and much faster on a machine busy with other work."""
    import torch
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


def pytest_configure(config):
    config.addinivalue_line("markers", "slow: long-running test, not part of the default run (-m slow)")


def pytest_collection_modifyitems(config, items):
    """`slow` tests run only when the -m expression names them. A -m on the command line replaces
    pytest.ini's `-m "not slow"`, so without this `-m "not server and not browser"` would pull in
    the training sweeps."""
    if "slow" in (config.option.markexpr or ""):
        return
    keep, drop = [], []
    for item in items:
        (drop if item.get_closest_marker("slow") else keep).append(item)
    if drop:
        config.hook.pytest_deselected(items=drop)
        items[:] = keep


@pytest.fixture(scope="session")
def shared_dir() -> Path:
    if not SHARED.is_dir():
        pytest.skip(f"{SHARED} is not here (only on the project's machines)")
    return SHARED


@pytest.fixture(scope="session")
def shared_data(shared_dir) -> Path:
    d = shared_dir / "data"
    if not d.is_dir():
        pytest.skip(f"{d} is not here")
    return d


@pytest.fixture(scope="session")
def specs_dir(shared_dir) -> Path:
    d = shared_dir / "specs"
    if not d.is_dir():
        pytest.skip(f"{d} is not here")
    return d


# --- tiny random models, so that tests never need the trained (shipped) weights ---------------

# ab of the bin the tiny default model leans towards (a moderate red, in gamut for mid tones)
TINY_REDDISH_AB = (30.0, 20.0)
TINY_INPUT_SIZE = 128


@pytest.fixture(scope="session")
def ab_bins():
    """The 313 ab bin centres (K x 2) shipped with the package."""
    import numpy as np
    from colorizer.losses import AB_BINS_313
    return np.load(AB_BINS_313).astype(np.float32)


def build_tiny_default(bins, seed: int = 0, hints: bool = True):
    """A small randomly initialised model of the default's architecture (EfficientNet-Lite0
    U-Net, classification head, takes colour hints) whose output is colourful and depends on the
    input (and on hints).

    PyTorch's default conv init makes the activations of a deep random net vanish (the output
    would be one flat colour), so the convs get He init; the head's bias favours a reddish bin.
    Returns (model, model_args).
    """
    import numpy as np
    import torch
    from colorizer.models import build_model

    args = {"encoder": "efficientnet_lite0", "decoder_channels": [32, 16, 16],
            "head": "classification", "n_bins": int(len(bins)), "hints": hints}
    torch.manual_seed(seed)
    model = build_model("backbone_unet", **args)
    for m in model.modules():
        if isinstance(m, torch.nn.Conv2d):
            torch.nn.init.kaiming_normal_(m.weight, nonlinearity="relu")
    if hints:  # the hint layer also sees the features when there are no hints: keep it neutral there
        with torch.no_grad():
            model.hint_mix.weight[:, :model.decoder.out_channels].zero_()
    bins = np.asarray(bins, dtype=np.float32)
    k = int(np.argmin(((bins - np.array(TINY_REDDISH_AB, np.float32)) ** 2).sum(1)))
    with torch.no_grad():
        model.head.bins.copy_(torch.from_numpy(bins))
        model.head.conv.weight.mul_(0.5)
        model.head.conv.bias.zero_()
        model.head.conv.bias[k] = 3.0
    return model.eval(), args


def build_tiny_vae_gan(bins, seed: int = 0):
    """The tiny default's architecture as a VAE-GAN (colorizer/models/vae_gan.py) whose latent
    projections are random, so that different z give visibly different colours.
    Returns (model, model_args)."""
    import torch
    from colorizer.models import build_model

    base, args = build_tiny_default(bins, seed)
    args = {**args, "latent": 4}
    model = build_model("vae_gan", **args)
    own = model.state_dict()
    own.update(base.state_dict())
    model.load_state_dict(own)
    torch.manual_seed(seed + 1)
    with torch.no_grad():
        torch.nn.init.normal_(model.latent.to_out.weight, std=0.1)
        torch.nn.init.normal_(model.latent.to_deep.weight, std=0.1)
    return model.eval(), args


@pytest.fixture(scope="session")
def tiny_checkpoint(tmp_path_factory, ab_bins) -> Path:
    """A checkpoint file of the tiny default model (written once per session; do not modify)."""
    from colorizer.registry import REGISTRY, DEFAULT_MODEL
    from colorizer.weights import save_checkpoint

    model, args = build_tiny_default(ab_bins)
    path = tmp_path_factory.mktemp("tiny_ckpt") / REGISTRY[DEFAULT_MODEL].weights
    save_checkpoint(path, model, "backbone_unet", args, meta={"input_size": TINY_INPUT_SIZE})
    return path


@pytest.fixture
def tiny_weights_dir(tmp_path, tiny_checkpoint, monkeypatch) -> Path:
    """A fresh weights folder holding only the tiny default checkpoint (lite0_scene.pt), made the
    weights folder of this test through $COLORIZER_WEIGHTS_DIR."""
    import shutil
    d = tmp_path / "weights"
    d.mkdir()
    shutil.copyfile(tiny_checkpoint, d / tiny_checkpoint.name)
    monkeypatch.setenv("COLORIZER_WEIGHTS_DIR", str(d))
    return d


@pytest.fixture
def empty_weights_dir(tmp_path, monkeypatch) -> Path:
    """An empty weights folder (a fresh clone without weights)."""
    d = tmp_path / "no_weights"
    d.mkdir()
    monkeypatch.setenv("COLORIZER_WEIGHTS_DIR", str(d))
    return d


@pytest.fixture(scope="session")
def tiny_colorizer(tiny_checkpoint):
    """The tiny default model loaded through load_colorizer('default'), on the CPU, shared by
    the tests of a session (they must not change it)."""
    import colorizer
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("COLORIZER_WEIGHTS_DIR", str(tiny_checkpoint.parent))
        return colorizer.load_colorizer("default", device="cpu")


# --- the Turing test's database: never ./data/turing.db during tests ---------------------------

@pytest.fixture(autouse=True, scope="session")
def _turing_db_isolated(tmp_path_factory):
    """Importing app.py builds the Turing test tabs, which open $TURING_DB_URL (default
    ./data/turing.db) and may start the demo survey: in tests, a temporary database without
    the demo, unless the environment sets them."""
    mp = pytest.MonkeyPatch()
    if not os.environ.get("TURING_DB_URL"):
        mp.setenv("TURING_DB_URL", f"sqlite:///{tmp_path_factory.mktemp('turing_db') / 'turing.db'}")
    if not os.environ.get("TURING_DEMO"):
        mp.setenv("TURING_DEMO", "0")
    yield
    mp.undo()


@pytest.fixture(autouse=True, scope="session")
def _photo_cache_isolated(tmp_path_factory):
    """Training runs in tests cache their decoded photos in a temporary folder, not in the
    repository's .cache/photos."""
    mp = pytest.MonkeyPatch()
    mp.setenv("COLORIZER_CACHE_DIR", str(tmp_path_factory.mktemp("photo_cache")))
    yield
    mp.undo()


@pytest.fixture(scope="session")
def gradient_photos(tmp_path_factory) -> Path:
    """Six small, noisy colour-gradient PNGs: enough for a training run of a few steps."""
    import numpy as np
    from PIL import Image

    d = tmp_path_factory.mktemp("gradient_photos")
    rng = np.random.default_rng(0)
    for i in range(6):
        yy, xx = np.mgrid[0:48, 0:48]
        img = np.stack([(xx * 5 + i * 20) % 256, (yy * 5) % 256, np.full_like(xx, 40 * i)], -1)
        img = np.clip(img + rng.normal(0, 6, img.shape), 0, 255).astype(np.uint8)
        Image.fromarray(img).save(d / f"p{i}.png")
    return d
