from pathlib import Path

import pytest

from rushhour.errors import ConfigError
from rushhour.settings import describe_settings, load_settings


def test_defaults(in_tmp: Path) -> None:
    s = load_settings(environ={})
    assert s.data_dir == Path(".rushhour")
    assert s.store_url() == "sqlite:///.rushhour/rushhour.db"
    assert s.bucket_width() == 60


def test_precedence_defaults_toml_env_flags(in_tmp: Path) -> None:
    (in_tmp / "rushhour.toml").write_text(
        'timezone = "Europe/Berlin"\nbucket = "5m"\n[detect]\nk = 4.0\nmin_relative_deviation = 0.2\n'
    )
    env = {"RUSHHOUR_DETECT__K": "5.5", "RUSHHOUR_BUCKET": "2m"}
    s = load_settings(environ=env, overrides={"bucket": "10m"})
    assert s.timezone == "Europe/Berlin"  # from the file
    assert s.detect.min_relative_deviation == 0.2  # file, untouched by env
    assert s.detect.k == 5.5  # env beats the file
    assert s.bucket == "10m"  # flags beat everything


def test_explicit_config_file(tmp_path: Path, in_tmp: Path) -> None:
    cfg = tmp_path / "elsewhere.toml"
    cfg.write_text('[store]\nurl = "postgresql+psycopg://u:secret@db/x"\n')
    s = load_settings(cfg, environ={})
    assert s.masked()["store"]["url"] == "postgresql+psycopg://u:***@db/x"


def test_secret_token_is_masked(in_tmp: Path) -> None:
    s = load_settings(environ={"RUSHHOUR_API__TOKEN": "abc123"})
    assert s.api.token is not None and s.api.token.get_secret_value() == "abc123"
    assert s.masked()["api"]["token"] == "***"
    assert "abc123" not in repr(s)


def test_missing_config_file(in_tmp: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        load_settings(Path("nope.toml"), environ={})


@pytest.mark.parametrize(
    ("toml", "match"),
    [
        ('timezone = "Mars/Base"', "timezone"),
        ('bucket = "1.5s"', "bucket"),
        ("[detect]\nk = -1", "detect.k"),
        ("[detect]\nrcf_time_decay = 200", "rcf_time_decay"),
        ('colour = "blue"', "colour"),
        ("[detect\nk = 1", "cannot read config"),
    ],
)
def test_bad_settings_name_the_field_and_file(in_tmp: Path, toml: str, match: str) -> None:
    (in_tmp / "rushhour.toml").write_text(toml + "\n")
    with pytest.raises(ConfigError, match=match) as info:
        load_settings(environ={})
    assert info.value.exit_code == 2
    if "cannot read" not in match:
        assert "rushhour.toml" in info.value.message


def test_every_setting_is_documented() -> None:
    doc = (Path(__file__).parents[1] / "docs" / "configuration.md").read_text()
    missing = [key for key, _, _ in describe_settings() if f"`{key}`" not in doc]
    assert not missing, f"settings missing from docs/configuration.md: {missing}"
