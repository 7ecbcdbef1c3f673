"""`flows.reproduce.world_web_settings`: the settings of an env_service over another world's
web, whose directory the flow builds from a (possibly relative) `data_root`."""

from __future__ import annotations

from pathlib import Path

import pytest

from conf import load_settings
from flows.reproduce import world_web_settings


def test_a_relative_data_root_is_not_joined_twice(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.chdir(tmp_path)
    settings = load_settings("local", ["data_root=.literesearcher"])
    web_dir = settings.path("teacher-worlds/7") / "world_web"  # as other_world_sft_data builds it
    assert not web_dir.is_absolute()
    web = world_web_settings(settings, web_dir)
    expected = tmp_path / ".literesearcher" / "teacher-worlds" / "7" / "world_web"
    assert web.path(web.index.tantivy_path) == expected / "lexical"
    assert web.path(web.page_store.duckdb_path) == expected / "pages.duckdb"
    assert (web.index.lexical_backend, web.page_store.backend) == ("tantivy", "duckdb")
    assert settings.index.tantivy_path != web.index.tantivy_path  # a copy: the input is unchanged
