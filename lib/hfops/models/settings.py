"""The ``[models]`` settings (``hfops.config.ModelsConfig``) and the Hub settings acquisition uses."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from hfops.config import ModelsConfig


def models_settings(settings: Any) -> ModelsConfig:
    """``settings.models`` (``[models]``); the defaults for settings objects without the section."""
    section = getattr(settings, "models", None)
    if isinstance(section, ModelsConfig):
        return section
    config = ModelsConfig()
    if section is not None:
        for name in ModelsConfig.__dataclass_fields__:
            if hasattr(section, name):
                setattr(config, name, getattr(section, name))
    return config


def hub_endpoint(settings: Any) -> str:
    """``[hub] endpoint`` without a trailing slash."""
    hub = getattr(settings, "hub", None)
    return str(getattr(hub, "endpoint", "https://huggingface.co")).rstrip("/")


def hub_timeout(settings: Any) -> float:
    hub = getattr(settings, "hub", None)
    return float(getattr(hub, "request_timeout_seconds", 30.0))


def cache_dir(settings: Any) -> Path:
    """The HF hub cache used for downloads and look-ups (read at call time)."""
    configured = models_settings(settings).cache_dir
    if configured:
        return Path(configured).expanduser()
    from huggingface_hub import constants

    return Path(os.environ.get("HF_HUB_CACHE") or constants.HF_HUB_CACHE)


def gigabytes(n_bytes: float) -> str:
    """``n_bytes`` as decimal GB with two decimals (``0.09 GB``)."""
    return f"{n_bytes / 1e9:.2f} GB"
