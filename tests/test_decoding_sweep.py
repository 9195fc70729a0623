"""scripts/decoding_sweep.py end to end, with the shipped default model on synthetic photos."""
from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from turing_helpers import REPO


def _sweep(*args):
    return subprocess.run([sys.executable, "scripts/decoding_sweep.py", *args], cwd=REPO,
                          capture_output=True, text=True, timeout=300)


@pytest.mark.heavy
def test_each_setting_decodes_the_same_logits(tmp_path):
    rng = np.random.default_rng(1)
    for i in range(3):
        img = np.empty((96, 128, 3), np.uint8)
        img[:] = rng.integers(0, 256, 3)
        img[:48] = rng.integers(0, 256, 3)
        Image.fromarray(img).save(tmp_path / f"p{i}.png")
    r = _sweep(str(tmp_path), "--corrections", "0.6", "--gains", "1.0", "1.5")
    assert r.returncode == 0, r.stdout + r.stderr
    head, *lines = r.stdout.strip().splitlines()
    assert head.startswith(f"{tmp_path}: 3 photos, gray PSNR ") and head.endswith("working resolution 256")
    rows = [json.loads(line) for line in lines]
    assert [(row["c"], row["g"]) for row in rows] == [(0.6, 1.0), (0.6, 1.5)]
    # a chroma gain of 1.5 on the same logits: clearly more colourful (colorfulness is measured
    # in RGB, so not exactly 1.5 times)
    ratio = rows[1]["colorfulness_ratio"] / rows[0]["colorfulness_ratio"]
    assert 1.25 < ratio < 2.5, ratio
    assert rows[0]["psnr"] != rows[1]["psnr"]


@pytest.mark.parametrize("script", ["decoding_sweep.py", "hint_spread_sweep.py"])
@pytest.mark.heavy
def test_both_sweeps_name_an_unknown_model(tmp_path, script):
    r = subprocess.run([sys.executable, f"scripts/{script}", str(tmp_path), "--model", "no-such-model"],
                       cwd=REPO, capture_output=True, text=True, timeout=300)
    assert r.returncode == 2
    assert "error: unknown model 'no-such-model'" in r.stderr
    assert "Traceback" not in r.stderr
