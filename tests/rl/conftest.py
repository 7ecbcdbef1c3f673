"""Fixtures for tests/rl. Helpers live in rl_testkit.py (importable: this folder is put on
sys.path, since pytest runs with --import-mode=importlib)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from rl_testkit import FakeWeb


@pytest.fixture
def web() -> FakeWeb:
    return FakeWeb()
