"""scripts/hint_spread_sweep.py end to end, with the shipped `lite0-hint` on synthetic photos.

(`lite0-hint`, on which the spreading's constants were chosen: the default `lite0-scene` paints
these flat, random-coloured synthetic photos with colours that vary inside each region, which the
spreading corrects less, 23.0 -> 20.0 against 24.0 -> 8.1; on real photos, 10 hints from the
truth take both to the same dE2000: 6.79 and 6.87 on 100 val/imagenet_val photos.)"""
from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from turing_helpers import REPO


def _photos(folder, n=3):
    """Flat-coloured regions with sharp edges: where spreading the hints along edges must help."""
    folder.mkdir()
    rng = np.random.default_rng(0)
    for i in range(n):
        img = np.empty((96, 128, 3), np.uint8)
        img[:] = rng.integers(0, 256, 3)
        img[20:70, 30:100] = rng.integers(0, 256, 3)
        img[:, 110:] = rng.integers(0, 256, 3)
        Image.fromarray(img).save(folder / f"p{i}.png")


def _sweep(*args):
    return subprocess.run([sys.executable, "scripts/hint_spread_sweep.py", *args], cwd=REPO,
                          capture_output=True, text=True, timeout=300)


@pytest.mark.heavy
def test_sweep_scores_each_setting_against_the_network_alone(tmp_path):
    from colorizer import hints
    _photos(tmp_path / "photos")
    shipped = f"{hints.SPREAD_SIGMA},{hints.EDGE_COST},{hints.GLOBAL_RIDGE}"
    r = _sweep(str(tmp_path / "photos"), "--model", "lite0-hint", "--settings", "0.05,0.3,1.5", shipped)
    assert r.returncode == 0, r.stdout + r.stderr
    lines = r.stdout.strip().splitlines()
    assert len(lines) == 3
    rows = [json.loads(line.split(" (shipped)")[0]) for line in lines]
    assert [row["spread"] for row in rows] == [False, True, True]
    assert all(row["photos"] == 3 for row in rows)
    assert (rows[1]["sigma"], rows[1]["edge_cost"], rows[1]["ridge"]) == (0.05, 0.3, 1.5)
    assert lines[2].endswith(" (shipped)") and not lines[1].endswith(" (shipped)")
    # ten hints from the truth, spread over flat regions, beat the network's colours by far
    assert rows[1]["de2000"] < 0.7 * rows[0]["de2000"]
    assert rows[2]["de2000"] < 0.7 * rows[0]["de2000"]
    assert rows[1]["de2000"] != rows[2]["de2000"]


def test_sweep_rejects_a_malformed_setting(tmp_path):
    r = _sweep(str(tmp_path), "--settings", "0.3,0.75")
    assert r.returncode == 2
    assert "a setting is SIGMA,EDGE_COST,RIDGE (3 numbers), got '0.3,0.75'" in r.stderr
    assert "Traceback" not in r.stderr

