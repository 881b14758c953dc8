"""Where the CLI keeps its files, and which URLs and key win: option, environment, config file, default."""

from __future__ import annotations

import stat

import platformdirs
import pytest

from cli import config


def test_dmp_home_holds_config_and_queue(tmp_path) -> None:
    p = config.paths({"DMP_HOME": str(tmp_path)})
    assert p.config_file == tmp_path / "config.json"
    assert p.queue_file == tmp_path / "queue.sqlite3"


def test_without_dmp_home_the_platforms_user_folders_are_used() -> None:
    p = config.paths({})
    assert p.config_dir == platformdirs.user_config_path("dmp")
    assert p.data_dir == platformdirs.user_data_path("dmp")


def test_the_config_file_is_readable_by_its_owner_only(tmp_path) -> None:
    p = config.paths({"DMP_HOME": str(tmp_path / "home")})
    config.save(p, {"ingest_url": "http://h:8000", "key": "dmp_abc_secret"})
    assert stat.S_IMODE(p.config_file.stat().st_mode) == 0o600
    assert config.load(p) == {"ingest_url": "http://h:8000", "key": "dmp_abc_secret"}
    assert [f.name for f in p.config_dir.iterdir()] == ["config.json"]


@pytest.mark.parametrize(("ingest", "aggregate"), [
    ("http://10.0.0.5:8000", "http://10.0.0.5:8002"),
    ("https://dmp.example.org/api", "https://dmp.example.org:8002"),
    ("http://[::1]:8000", "http://[::1]:8002"),
])
def test_aggregate_defaults_to_port_8002_of_ingests_host(ingest: str, aggregate: str) -> None:
    assert config.derive_aggregate_url(ingest) == aggregate


def test_defaults_without_config_or_environment(tmp_path) -> None:
    settings = config.resolve(config.paths({"DMP_HOME": str(tmp_path)}), env={})
    assert settings == config.Settings("http://127.0.0.1:8000", "http://127.0.0.1:8002", None)
    assert settings.headers() == {}


def test_environment_overrides_the_config_file_and_options_override_both(tmp_path) -> None:
    p = config.paths({"DMP_HOME": str(tmp_path)})
    config.save(p, {"ingest_url": "http://saved:8000", "aggregate_url": "http://saved-status:9002", "key": "saved"})
    assert config.resolve(p, env={}) == config.Settings("http://saved:8000", "http://saved-status:9002", "saved")
    env = {"DMP_INGEST_URL": "http://env:7000/", "DMP_KEY": "envkey"}
    from_env = config.resolve(p, env=env)
    assert from_env == config.Settings("http://env:7000", "http://env:8002", "envkey")
    assert from_env.headers() == {"Authorization": "Bearer envkey"}
    both = config.resolve(p, ingest_url="http://opt:1", aggregate_url="http://opt:2",
                          env={**env, "DMP_AGGREGATE_URL": "http://env-status:1"})
    assert (both.ingest_url, both.aggregate_url) == ("http://opt:1", "http://opt:2")


def test_keys_are_masked_when_shown() -> None:
    assert config.masked("dmp_0123456789ab_supersecret") == "dmp_0123…"
    assert config.masked(None) == "(none)"
