from pathlib import Path

import pytest

from conf import ConfigError, load_settings


def test_local_profile_is_embedded_default():
    s = load_settings("local", env={})
    assert s.profile == "local"
    assert s.index.lexical_backend == "tantivy"
    assert s.page_store.backend == "duckdb"
    assert s.cache.backend == "lru"
    assert s.mlflow.tracking_uri is None and s.mlflow_tracking_uri().startswith("sqlite:///")
    assert s.dask.scheduler_address is None and s.prefect.api_url is None


def test_cluster_profile_extends_local_and_uses_servers():
    s = load_settings("cluster", env={})
    assert s.profile == "cluster"
    assert s.page_store.backend == "postgres"
    assert s.cache.backend == "redis"
    assert s.index.milvus_uri.startswith("http://")
    assert s.dask.scheduler_address
    # Inherited from local where cluster.yaml says nothing.
    assert s.corpus.num_shards == load_settings("local", env={}).corpus.num_shards


def test_demo_profile_policy_sizes_are_tiny_sizes_fields():
    """The demo's `pipeline.policy_sizes` (numbers and the copy loss's name) make a valid
    `TinySizes`, and a `--set` of a sizes field parses to its type."""
    from literesearcher.tiny_models import TinySizes

    s = load_settings("demo", env={})
    sizes = TinySizes.from_overrides(s.pipeline.policy_sizes)
    assert sizes.pretrain_copy_loss == "copied" and sizes.pretrain_copy_steps > 0
    again = load_settings("demo", ["pipeline.policy_sizes.pretrain_copy_loss=all",
                                   "pipeline.policy_sizes.pretrain_steps=7"], env={})  # fmt: skip
    sizes = TinySizes.from_overrides(again.pipeline.policy_sizes)
    assert (sizes.pretrain_copy_loss, sizes.pretrain_steps) == ("all", 7)


def test_env_then_cli_overrides_take_precedence_and_parse_types():
    env = {"LITERESEARCHER__CORPUS__NUM_SHARDS": "3", "LITERESEARCHER__CACHE__ENABLED": "false"}
    s = load_settings("local", env=env)
    assert s.corpus.num_shards == 3 and s.cache.enabled is False
    s = load_settings("local", ["corpus.num_shards=5"], env=env)
    assert s.corpus.num_shards == 5


def test_profile_from_environment_variable():
    assert load_settings(None, env={"LITERESEARCHER_PROFILE": "cluster"}).profile == "cluster"


def test_bad_value_error_names_key_and_file():
    with pytest.raises(ConfigError) as err:
        load_settings("local", ["index.retrieval_mode=semantic"], env={})
    msg = str(err.value)
    assert "index.retrieval_mode" in msg and "override --set index.retrieval_mode=semantic" in msg


def test_bad_value_in_yaml_names_the_file(tmp_path: Path):
    bad = tmp_path / "mine.yaml"
    bad.write_text("extends: local\ncorpus:\n  num_shards: zero\n")
    with pytest.raises(ConfigError) as err:
        load_settings(bad, env={})
    assert str(bad) in str(err.value) and "corpus.num_shards" in str(err.value)


def test_unknown_key_is_rejected_with_its_source(tmp_path: Path):
    bad = tmp_path / "typo.yaml"
    bad.write_text("extends: local\npage_store:\n  backnd: postgres\n")
    with pytest.raises(ConfigError) as err:
        load_settings(bad, env={})
    assert "page_store.backnd" in str(err.value) and str(bad) in str(err.value)


def test_env_override_error_names_the_variable():
    with pytest.raises(ConfigError) as err:
        load_settings("local", env={"LITERESEARCHER__ENV_SERVICE__PORT": "99999"})
    assert "LITERESEARCHER__ENV_SERVICE__PORT" in str(err.value)


def test_unknown_profile_lists_known_ones():
    with pytest.raises(ConfigError, match=r"known profiles: .*cluster.*local"):
        load_settings("nope", env={})


def test_malformed_override_and_yaml(tmp_path: Path):
    with pytest.raises(ConfigError, match=r"section\.key=value"):
        load_settings("local", ["corpus.num_shards"], env={})
    broken = tmp_path / "broken.yaml"
    broken.write_text("corpus: [unclosed\n")
    with pytest.raises(ConfigError, match="invalid YAML"):
        load_settings(broken, env={})


def test_relative_paths_resolve_under_data_root(tmp_path: Path):
    s = load_settings("local", [f"data_root={tmp_path}"], env={})
    assert s.path(s.page_store.duckdb_path) == tmp_path / "pages.duckdb"
    assert s.uri("s3://bucket/catalog") == "s3://bucket/catalog"
    assert s.path("/abs/x") == Path("/abs/x")


def test_portable_names_paths_inside_data_root_relative_to_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    """Cache keys name paths inside data_root relative to it: two copies of a data root (or a
    relative data_root seen from its parent) give the same names; other paths stay absolute."""
    a = load_settings("local", [f"data_root={tmp_path / 'a'}"], env={})
    b = load_settings("local", [f"data_root={tmp_path / 'b'}"], env={})
    assert a.portable("catalog/checkpoints/v1") == "$data_root/catalog/checkpoints/v1"
    assert a.portable(tmp_path / "a" / "index" / "x") == b.portable(tmp_path / "b" / "index" / "x")
    assert a.portable(tmp_path / "elsewhere") == str(tmp_path / "elsewhere")
    assert a.portable(tmp_path / "b" / "x") == str(tmp_path / "b" / "x")  # not inside `a`
    assert b.unportable(a.portable("pages.jsonl")) == tmp_path / "b" / "pages.jsonl"
    assert a.unportable("/abs/x") == Path("/abs/x")
    monkeypatch.chdir(tmp_path)
    rel = load_settings("local", ["data_root=a"], env={})
    assert rel.portable("pages.jsonl") == a.portable("pages.jsonl")
    assert rel.portable(tmp_path / "a" / "pages.jsonl") == "$data_root/pages.jsonl"


def test_no_credentials_in_profiles():
    for name in ("local", "cluster"):
        text = (Path(__file__).resolve().parents[1] / "conf" / f"{name}.yaml").read_text()
        assert "password" not in text.lower().replace("pgpassword", "")
