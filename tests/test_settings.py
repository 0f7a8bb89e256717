"""Settings from the environment: types parsed, every problem reported at once."""

from __future__ import annotations

from pathlib import Path

import pytest

from nochat.errors import ConfigError
from nochat.settings import Settings, unknown_variables


def test_settings_from_env_parses_types_and_overrides() -> None:
    env = {
        "NOCHAT_PORT": "9000",
        "NOCHAT_PING_INTERVAL_S": "1.5",
        "NOCHAT_COOKIE_SECURE": "yes",
        "NOCHAT_ALLOWED_ORIGINS": "https://a.example, https://b.example",
        "NOCHAT_DATA_DIR": "/tmp/x",
    }
    s = Settings.from_env(env, host="0.0.0.0", port=None)
    assert (s.port, s.host, s.ping_interval_s, s.cookie_secure) == (9000, "0.0.0.0", 1.5, True)
    assert s.allowed_origins == ("https://a.example", "https://b.example")
    assert s.data_dir == Path("/tmp/x")


def test_settings_report_every_bad_key() -> None:
    env = {"NOCHAT_PORT": "eighty", "NOCHAT_COOKIE_SECURE": "perhaps"}
    with pytest.raises(ConfigError) as caught:
        Settings.from_env(env)
    assert len(caught.value.problems) == 2
    assert "NOCHAT_PORT" in str(caught.value) and "NOCHAT_COOKIE_SECURE" in str(caught.value)


def test_settings_validate_ranges() -> None:
    with pytest.raises(ConfigError) as caught:
        Settings.from_env({"NOCHAT_PORT": "70000", "NOCHAT_PONG_TIMEOUT_S": "1"})
    assert len(caught.value.problems) == 2


def test_settings_database_url_selects_postgres_and_bad_values_are_all_reported() -> None:
    s = Settings.from_env(
        {"NOCHAT_DATABASE_URL": "postgresql://u@db/nochat", "NOCHAT_DATABASE_POOL_SIZE": "4"}
    )
    assert (s.database_url, s.database_pool_size) == ("postgresql://u@db/nochat", 4)
    assert "postgresql://" not in repr(s)  # the URL may carry a password
    with pytest.raises(ConfigError) as caught:
        Settings.from_env({"NOCHAT_DATABASE_URL": "mysql://x", "NOCHAT_DATABASE_POOL_SIZE": "1"})
    assert len(caught.value.problems) == 2


def test_settings_room_caps_must_be_positive() -> None:
    env = {"NOCHAT_MAX_ROOMS_PER_USER": "0", "NOCHAT_ROOM_CREATIONS_PER_HOUR": "-1"}
    with pytest.raises(ConfigError) as caught:
        Settings.from_env(env)
    assert len(caught.value.problems) == 2
    assert "max_rooms_per_user" in str(caught.value)
    assert "room_creations_per_hour" in str(caught.value)


def test_settings_unparsable_and_out_of_range_values_are_reported_together() -> None:
    env = {"NOCHAT_PING_INTERVAL_S": "soon", "NOCHAT_LOG_LEVEL": "loud"}
    with pytest.raises(ConfigError) as caught:
        Settings.from_env(env, port="80x", max_frame_bytes=10)
    text = str(caught.value)
    for bad in ("NOCHAT_PING_INTERVAL_S", "log_level", "--port='80x'", "max_frame_bytes"):
        assert bad in text
    assert len(caught.value.problems) == 4


def test_settings_unknown_variables_are_named_with_the_closest_setting() -> None:
    env = {"NOCHAT_PROT": "1", "NOCHAT_ZZZ": "1", "NOCHAT_PORT": "1", "HOME": "/"}
    env["NOCHAT_REQUIRE_SERVICES"] = "1"
    assert unknown_variables(env) == [
        "unknown variable NOCHAT_PROT is ignored; did you mean NOCHAT_PORT?",
        "unknown variable NOCHAT_ZZZ is ignored",
    ]


def test_settings_broker_values_are_checked_together() -> None:
    env = {
        "NOCHAT_REDIS_URL": "http://redis",
        "NOCHAT_BROKER_HOLD_S": "0",
        "NOCHAT_BROKER_BUFFER": "0",
    }
    with pytest.raises(ConfigError) as caught:
        Settings.from_env(env)
    assert len(caught.value.problems) == 3
    ok = Settings.from_env({"NOCHAT_REDIS_URL": "redis://127.0.0.1:6379/0"})
    assert ok.redis_url == "redis://127.0.0.1:6379/0" and "redis" not in repr(ok)


def test_settings_presence_lease_must_outlast_two_refreshes() -> None:
    defaults = Settings.from_env({})
    assert defaults.presence_lease_s + defaults.presence_refresh_s <= 15  # the stated bound
    with pytest.raises(ConfigError) as caught:
        Settings.from_env({"NOCHAT_PRESENCE_LEASE_S": "3", "NOCHAT_PRESENCE_REFRESH_S": "2"})
    assert caught.value.problems == ["presence_refresh_s must be at most half of presence_lease_s"]
    with pytest.raises(ConfigError) as caught:
        Settings.from_env({"NOCHAT_PRESENCE_LEASE_S": "0"})
    assert "presence_lease_s must be > 0" in caught.value.problems
    quick = Settings.from_env({"NOCHAT_PRESENCE_LEASE_S": "4", "NOCHAT_PRESENCE_REFRESH_S": "1"})
    assert (quick.presence_lease_s, quick.presence_refresh_s) == (4.0, 1.0)
