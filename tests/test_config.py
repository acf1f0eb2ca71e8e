"""Configuration precedence and validation; the CLI reports bad config as a clear error."""

from __future__ import annotations

import dataclasses
import re
import subprocess
import sys
from pathlib import Path

import pytest

from hfops.config import ConfigError, load_settings, secret_status, settings_from_mapping, settings_to_mapping


def test_defaults_without_a_file() -> None:
    s = load_settings()
    assert s.discovery.min_downloads == 1000 and s.discovery.min_likes == 10
    assert s.hub.endpoint == "https://huggingface.co"
    assert s.inference.base_url == "https://router.huggingface.co"
    assert s.store.path == "var/hfops.db"
    assert "apache-2.0" in s.discovery.licenses and "*openrail*" in s.discovery.licenses


def test_file_overrides_defaults_and_flags_override_file(tmp_path: Path) -> None:
    cfg = tmp_path / "c.toml"
    cfg.write_text(
        '[hub]\nendpoint = "http://127.0.0.1:1"\n[store]\npath = "a.db"\n[discovery]\nmin_likes = 3\n'
    )
    s = load_settings(cfg)
    assert (s.hub.endpoint, s.store.path, s.discovery.min_likes) == ("http://127.0.0.1:1", "a.db", 3)
    s = load_settings(cfg, **{"store.path": "flag.db", "hub.endpoint": None})
    assert s.store.path == "flag.db" and s.hub.endpoint == "http://127.0.0.1:1"


def test_hfops_toml_in_working_directory_is_the_default(tmp_path: Path) -> None:
    (tmp_path / "hfops.toml").write_text("[discovery]\nmin_downloads = 5\n")
    assert load_settings().discovery.min_downloads == 5


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[hub]\nendpoit = 'x'\n", r"unknown key \[hub\] endpoit"),
        ("[hubb]\nendpoint = 'x'\n", r"unknown section \[hubb\]"),
        ("[discovery]\nmin_likes = 'ten'\n", r"\[discovery\] min_likes: expected int, got str"),
        ("[discovery]\nlicenses = 'mit'\n", r"\[discovery\] licenses: expected a list"),
        ("[discovery]\nrequire_safetensors = 1\n", r"require_safetensors: expected bool"),
        ("[hub\n", "invalid TOML"),
    ],
)
def test_bad_config_is_an_error_naming_the_key(tmp_path: Path, text: str, message: str) -> None:
    cfg = tmp_path / "c.toml"
    cfg.write_text(text)
    with pytest.raises(ConfigError, match=message):
        load_settings(cfg)


def test_cli_reports_bad_config_without_traceback(tmp_path: Path) -> None:
    cfg = tmp_path / "c.toml"
    cfg.write_text("[store]\npaht = 'x'\n")
    proc = subprocess.run(
        [sys.executable, "-m", "hfops.cli", "--config", str(cfg), "candidates"],
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 2
    assert "unknown key [store] paht" in proc.stderr and "Traceback" not in proc.stderr
    missing = subprocess.run(
        [sys.executable, "-m", "hfops.cli", "--config", "nope.toml", "candidates"],
        capture_output=True,
        text=True,
    )
    assert missing.returncode == 2 and "config file not found: nope.toml" in missing.stderr


def test_secret_status_never_reveals_the_value() -> None:
    assert secret_status("hf_abcdefghijklmnopqrstuvwxyz0123456789") == "set"
    assert secret_status(None) == "not set" and secret_status("") == "not set"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "[refine]\nbudget_ms = -5\n",
            r"\[refine\] budget_ms = -5 is out of range: must be between 50 and 60000",
        ),
        ("[refine]\nper_minute = 20\nper_hour = 5\n", r"\[refine\] per_hour = 5 is below per_minute = 20"),
        (
            "[refine]\nbudget_ms = 300\nfallback_deadline_ms = 500\n",
            r"fallback_deadline_ms = 500 exceeds budget_ms",
        ),
        ("[eval]\nnightly_hour = 24\n", r"\[eval\] nightly_hour = 24 is out of range"),
        ("[eval]\nsource = 'web'\n", r"\[eval\] source = 'web' is out of range"),
        ("[eval]\nmax_error_rate = 1.5\n", r"max_error_rate = 1.5 is out of range"),
        ("[hub]\npage_size = 0\n", r"\[hub\] page_size = 0 is out of range"),
        ("[models]\nmax_download_gb = 0\n", r"\[models\] max_download_gb = 0.0 is out of range"),
        ("[queue]\nbackend = 'kafka'\n", r"\[queue\] backend = 'kafka' is out of range"),
        ("[queue]\nbackend = 'redis'\nurl = 'localhost'\n", r"\[queue\] url must be redis://"),
    ],
)
def test_values_out_of_range_are_errors_naming_file_and_key(tmp_path: Path, text: str, message: str) -> None:
    cfg = tmp_path / "c.toml"
    cfg.write_text(text)
    with pytest.raises(ConfigError, match=message) as raised:
        load_settings(cfg)
    assert str(cfg) in str(raised.value)


def test_flag_overrides_are_range_checked_too() -> None:
    with pytest.raises(ConfigError, match=r"\[refine\] budget_ms = 10"):
        load_settings(None, **{"refine.budget_ms": 10})


def test_unknown_key_names_the_file(tmp_path: Path) -> None:
    cfg = tmp_path / "c.toml"
    cfg.write_text("[hub]\nendpoit = 'x'\n")
    with pytest.raises(ConfigError, match=rf"^{re.escape(str(cfg))}: unknown key \[hub\] endpoit"):
        load_settings(cfg)


def test_settings_round_trip_through_a_job_mapping() -> None:
    settings = load_settings(None, **{"eval.default_limit": 7, "hub.endpoint": "http://127.0.0.1:9"})
    again = settings_from_mapping(settings_to_mapping(settings))
    assert again == dataclasses.replace(settings, source_file=None)
