"""Fixtures for tests/curriculum. Helpers live in curriculum_testkit.py (this folder and
tests/rl, for rl_testkit, are put on sys.path: pytest runs with --import-mode=importlib)."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parents[1] / "rl"))
sys.path.insert(0, str(Path(__file__).parent))

from curriculum_testkit import KnownRates, openai_app


@pytest.fixture
def policy_server() -> Iterator[str]:
    """The known-rates policy behind an OpenAI-compatible API; yields its base URL."""
    from literesearcher.testing import serve_app

    with serve_app(openai_app(KnownRates())) as base:
        yield f"{base}/v1"
