"""The ``[models]`` settings, read defensively until ``hfops.config.Settings`` carries the section."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

DEFAULT_GGUF_PREFERENCE = ("Q4_K_M", "Q4_1", "Q4_0", "Q4_K_S", "Q5_K_M", "Q5_1", "Q5_0", "Q8_0")


@dataclass
class ModelsConfig:
    """``[models]``: how models are acquired and run locally."""

    max_download_gb: float = 2.0  # largest download allowed (decimal GB, what the tree listing adds up to)
    auto_download: bool = True  # evals may pull a model on demand (as a job step) when it is not local
    cache_dir: str = ""  # HF hub cache; empty = HF_HUB_CACHE / huggingface_hub's default
    min_free_disk_gb: float = 1.0  # disk to leave free after a download
    memory_headroom: float = 1.2  # estimated memory = weights bytes x this, checked against available memory
    gguf_preference: list[str] = field(default_factory=lambda: list(DEFAULT_GGUF_PREFERENCE))
    gguf_threads: int = 0  # llama.cpp threads; 0 = the machine's CPU count
    gguf_context: int = 2048  # llama.cpp context window (tokens)
    check_per_minute: int = 30  # evaluability checks (model_info + tree calls) per minute in the check job


def models_settings(settings: Any) -> ModelsConfig:
    """``settings.models`` when config.py has the section, else the defaults (same field names)."""
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
