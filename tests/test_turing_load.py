"""The load script end to end (slow: run with `python -m pytest -m slow tests/test_turing_load.py`).

The full figures (100 participants x 20 votes) come from `python scripts/load_turing.py`; this
test runs a smaller load through the same script and its database check.
"""
from __future__ import annotations

import os
import re
import subprocess
import sys

import pytest

from turing_helpers import REPO

pytestmark = pytest.mark.server


@pytest.mark.slow
def test_load_script_small(tiny_weights_dir, tmp_path):
    env = {**os.environ, "COLORIZER_WEIGHTS_DIR": str(tiny_weights_dir)}
    r = subprocess.run([sys.executable, "scripts/load_turing.py", "--participants", "20",
                        "--votes", "8", "--think-ms", "200-600", "--ramp-s", "2", "--size", "128",
                        "--db", f"sqlite:///{tmp_path / 'load.db'}"],
                       cwd=REPO, env=env, capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "acknowledged votes: 160 of 160; in the database: 160; missing: 0; stored twice: 0" in r.stdout
    assert re.search(r"throughput: [\d.]+ votes/s", r.stdout)
    assert re.search(r"p95 \d+", r.stdout)
