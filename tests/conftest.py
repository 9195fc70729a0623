"""Shared test fixtures. Tests that need ../shared/data skip where it does not exist (a user's clone)."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
SHARED = Path(os.environ.get("COLORIZER_SHARED", REPO.parent / "shared"))


def pytest_configure(config):
    config.addinivalue_line("markers", "slow: long-running test, not part of the default run (-m slow)")


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
