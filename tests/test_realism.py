"""The realism score: a real-vs-colorized classifier trained and tested on disjoint photos."""
from __future__ import annotations

import numpy as np
import pytest
from PIL import Image
from skimage import data

from colorizer import lab
from colorizer.realism import FeatureExtractor, GrayBaseline, score_model

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def crops(count: int, seed: int) -> list[np.ndarray]:
    """Random crops of scikit-image's colour photos (different seeds: different crops)."""
    srcs = [data.astronaut(), data.coffee(), data.chelsea(), data.rocket(), data.immunohistochemistry()]
    rng = np.random.default_rng(seed)
    out = []
    for i in range(count):
        src = srcs[i % len(srcs)]
        s = int(rng.integers(120, min(src.shape[:2])))
        y, x = rng.integers(0, src.shape[0] - s + 1), rng.integers(0, src.shape[1] - s + 1)
        out.append(np.asarray(Image.fromarray(src[y:y + s, x:x + s]).resize((96, 96), Image.BILINEAR)))
    return out


class Identity:
    """A 'colorizer' that returns the true photo: indistinguishable by construction."""
    name = "identity"

    def colorize_batch(self, images, batch_size=16):
        return [np.array(im) for im in images]


class Tinted:
    """Gives every photo a strong purple cast: easy to tell from real photos."""
    name = "tinted"

    def colorize_batch(self, images, batch_size=16):
        out = []
        for im in images:
            L = lab.rgb_to_lightness(im)
            ab = np.stack([np.full_like(L, 45.0), np.full_like(L, -45.0)])
            out.append(lab.l_ab_to_rgb_uint8(L, ab))
        return out


@pytest.fixture(scope="module")
def features():
    return FeatureExtractor()


@pytest.mark.heavy
def test_obvious_fakes_are_caught_and_perfect_ones_are_not(features):
    train, test = crops(40, seed=1), crops(16, seed=2)
    for fake in (GrayBaseline(), Tinted()):
        r = score_model(features, fake, train, test)
        assert r["accuracy"] >= 0.9, (fake.name, r)
        assert r["test_photos"] == 16 and r["train_photos"] == 40
    r = score_model(features, Identity(), train, test)
    assert r["accuracy"] == pytest.approx(0.5)  # real and "colorized" are the same pixels


def test_realism_cli_refuses_overlapping_photo_sets(tmp_path, capsys):
    from colorizer import cli
    d = tmp_path / "photos"
    d.mkdir()
    Image.fromarray(crops(1, 0)[0]).save(d / "a.png")
    assert cli.main(["realism", "--train", str(d), "--test", str(d)]) == 2
    assert "disjoint" in capsys.readouterr().err
