"""An automatic realism score: a small classifier that tells real color photos from colorized ones.

For each model under test:
1. real photos of a training pool and the model's colorizations of the same photos (from their
   gray L) are turned into features by an ImageNet-pretrained EfficientNet-Lite0 that sees the
   RGB image (mean and standard deviation of its last three feature maps, plus a few color
   statistics: Lab chroma quantiles and Hasler-Suesstrunk colorfulness);
2. an L2-regularized logistic regression learns real vs colorized (the regularization picked on
   a held-out quarter of the training pool);
3. it is tested on photos disjoint from the training pool: real photos and the model's
   colorizations of them (each test photo appears once as real and once as colorized).

The score is the test accuracy: 50% means the classifier cannot tell the model's colors from
real ones, 100% that it always can. Every model gets its own classifier, trained the same way.

numpy, torch, PIL and the colorizer's encoders; reads photo folders, writes one JSON file.
"""
from __future__ import annotations

import json
import time
import warnings
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from . import lab, metrics

FEATURE_SIZE = 224
L2_CHOICES = (1e-4, 1e-3, 1e-2, 1e-1, 1.0)


class FeatureExtractor:
    def __init__(self):
        from .models.efficientnet_lite import EfficientNetLiteEncoder
        self.encoder = EfficientNetLiteEncoder("efficientnet_lite0", in_channels=3)
        self.encoder.load_imagenet()
        self.encoder.eval()

    def __call__(self, images: list[np.ndarray], batch_size: int = 32) -> np.ndarray:
        """uint8 RGB photos -> N x D features."""
        feats = []
        for s in range(0, len(images), batch_size):
            chunk = [_square(im) for im in images[s:s + batch_size]]
            x = self.encoder.rgb_input(torch.from_numpy(np.stack(chunk)))
            with torch.inference_mode():
                maps = self.encoder(x)[-3:]
            deep = [torch.cat([m.mean((2, 3)), m.std((2, 3))], 1) for m in maps]
            feats.append(torch.cat(deep, 1).numpy())
        color = np.stack([color_stats(im) for im in images])
        return np.concatenate([np.concatenate(feats), color], 1).astype(np.float32)


def _square(im: np.ndarray) -> np.ndarray:
    """Center square crop resized to FEATURE_SIZE (the same path for real and colorized)."""
    h, w = im.shape[:2]
    s = min(h, w)
    y, x = (h - s) // 2, (w - s) // 2
    pil = Image.fromarray(np.ascontiguousarray(im[y:y + s, x:x + s]))
    return np.asarray(pil.resize((FEATURE_SIZE, FEATURE_SIZE), Image.BILINEAR), dtype=np.uint8)


def color_stats(im: np.ndarray) -> np.ndarray:
    """A photo's chroma quantiles (10/50/90/99%), colorfulness and mean a, b, each / 50."""
    labim = lab.rgb_to_lab(im)
    chroma = np.hypot(labim[..., 1], labim[..., 2]).ravel()
    q = np.quantile(chroma, [0.1, 0.5, 0.9, 0.99])
    return np.concatenate([q / 50.0, [metrics.colorfulness(im) / 50.0,
                                      labim[..., 1].mean() / 50.0, labim[..., 2].mean() / 50.0]])


def colour_stats(im: np.ndarray) -> np.ndarray:
    """Deprecated British spelling of `color_stats`."""
    warnings.warn("colour_stats is deprecated, use color_stats", DeprecationWarning, stacklevel=2)
    return color_stats(im)


def fit_logistic(x: np.ndarray, y: np.ndarray, l2: float, steps: int = 200):
    """L2-regularized logistic regression (LBFGS); returns (weights, bias, mean, std)."""
    mu, sd = x.mean(0), x.std(0) + 1e-6
    xt = torch.from_numpy((x - mu) / sd)
    yt = torch.from_numpy(y.astype(np.float32))
    w = torch.zeros(x.shape[1], requires_grad=True)
    b = torch.zeros(1, requires_grad=True)
    opt = torch.optim.LBFGS([w, b], max_iter=steps, line_search_fn="strong_wolfe")

    def closure():
        opt.zero_grad()
        loss = torch.nn.functional.binary_cross_entropy_with_logits(xt @ w + b, yt) + l2 * (w * w).sum()
        loss.backward()
        return loss

    opt.step(closure)
    return w.detach().numpy(), float(b.detach()), mu, sd


def predict_real(model, x: np.ndarray) -> np.ndarray:
    w, b, mu, sd = model
    return ((x - mu) / sd) @ w + b > 0


def train_classifier(real: np.ndarray, fake: np.ndarray, seed: int = 0):
    """Features of real and colorized training photos (same photos, same order) -> classifier,
    with the L2 strength picked on a held-out quarter of the photos."""
    n = len(real)
    order = np.random.default_rng(seed).permutation(n)
    hold, fit = order[: n // 4], order[n // 4:]

    def xy(idx):
        return np.concatenate([real[idx], fake[idx]]), np.r_[np.ones(len(idx)), np.zeros(len(idx))]

    xf, yf = xy(fit)
    xh, yh = xy(hold)
    best = max(L2_CHOICES, key=lambda l2: ((predict_real(fit_logistic(xf, yf, l2), xh) == yh).mean(), l2))
    x, y = xy(np.arange(n))
    return fit_logistic(x, y, best), best


def score_model(features: FeatureExtractor, colorizer, train_photos, test_photos,
                train_real_feats=None, test_real_feats=None) -> dict:
    """Train a real-vs-colorized classifier for one colorizer and test it on disjoint photos."""
    t0 = time.time()
    tr_real = train_real_feats if train_real_feats is not None else features(train_photos)
    te_real = test_real_feats if test_real_feats is not None else features(test_photos)
    tr_fake = features(colorize_all(colorizer, train_photos))
    te_fake = features(colorize_all(colorizer, test_photos))
    clf, l2 = train_classifier(tr_real, tr_fake)
    real_ok = predict_real(clf, te_real)
    fake_caught = ~predict_real(clf, te_fake)
    return {"accuracy": float(np.r_[real_ok, fake_caught].mean()),
            "real_judged_real": float(real_ok.mean()),
            "colorized_judged_real": float(1 - fake_caught.mean()),
            "train_photos": len(train_photos), "test_photos": len(test_photos), "l2": l2,
            "seconds": round(time.time() - t0, 1)}


class GrayBaseline:
    """The gray input itself, as a 'model' (the easiest fake to catch)."""
    name = "gray"

    def colorize_batch(self, images, batch_size=16):
        return [lab.gray_rgb_from_lightness(lab.rgb_to_lightness(im)) for im in images]


def colorize_all(colorizer, photos: list[np.ndarray]) -> list[np.ndarray]:
    return colorizer.colorize_batch(photos, batch_size=16)


def load_photos(paths, limit: int, short_side: int = 256) -> list[np.ndarray]:
    from .evaluate import subsample
    from .data import find_images, load_images
    return load_images(subsample(find_images(paths), limit), short_side=short_side, workers=1)


def run(models: list[str], train_dirs, test_dirs, train_count: int = 400, test_count: int = 300,
        json_path: str | None = None, log=print) -> dict:
    from . import load_colorizer
    train_photos = load_photos(train_dirs, train_count)
    test_photos = load_photos(test_dirs, test_count)
    log(f"realism classifier: {len(train_photos)} training photos from {', '.join(map(str, train_dirs))}; "
        f"{len(test_photos)} test photos from {', '.join(map(str, test_dirs))}")
    feats = FeatureExtractor()
    tr_real, te_real = feats(train_photos), feats(test_photos)
    results = {}
    for name in models:
        c = GrayBaseline() if name == "gray" else load_colorizer(name)
        r = score_model(feats, c, train_photos, test_photos, tr_real, te_real)
        results[name] = r
        log(f"{name:<14} accuracy {100 * r['accuracy']:.1f}%  (real judged real {100 * r['real_judged_real']:.1f}%, "
            f"colorized judged real {100 * r['colorized_judged_real']:.1f}%)  {r['seconds']} s")
    doc = {"created": time.strftime("%Y-%m-%d %H:%M:%S"), "train_dirs": [str(d) for d in train_dirs],
           "test_dirs": [str(d) for d in test_dirs], "models": results}
    if json_path:
        Path(json_path).parent.mkdir(parents=True, exist_ok=True)
        Path(json_path).write_text(json.dumps(doc, indent=1))
    return doc
