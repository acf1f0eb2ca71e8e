"""Configuration: defaults < optional TOML file < command-line flags.

The TOML file (default ``hfops.toml`` in the working directory) may hold only the sections and keys
declared here; an unknown key or a value of the wrong type is a :class:`ConfigError` naming it.
Secrets never live here: they come from ``HUGGINGFACE_API_KEY`` / ``HUGGINGFACE_WRITE_TOKEN`` only.
"""

from __future__ import annotations

import dataclasses
import os
import tomllib
import types
import typing
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hfops.errors import ConfigError

DEFAULT_CONFIG_FILE = "hfops.toml"
API_KEY_ENV = "HUGGINGFACE_API_KEY"
WRITE_TOKEN_ENV = "HUGGINGFACE_WRITE_TOKEN"

DEFAULT_PIPELINE_TAGS = (
    "text-generation",
    "text2text-generation",
    "feature-extraction",
    "sentence-similarity",
)
DEFAULT_LICENSES = ("apache-2.0", "mit", "bsd-3-clause", "*openrail*")
DEFAULT_LIBRARIES = ("transformers", "sentence-transformers")


@dataclass
class HubConfig:
    endpoint: str = "https://huggingface.co"
    page_size: int = 1000
    max_models: int = 0  # 0 = no cap per sync
    deadline_seconds: float = 300.0  # give up a sync after this long in back-off
    max_backoff_seconds: float = 60.0
    request_timeout_seconds: float = 30.0
    full_sync_hours: float = 24.0  # auto mode: incremental passes until the last full pass is this old
    ratelimit_pacing: bool = True  # wait for the Hub's rate-limit window to reset instead of meeting a 429
    ratelimit_reserve: float = 0.05  # fraction of a window's quota left untouched (the pacing threshold)


@dataclass
class InferenceConfig:
    base_url: str = "https://router.huggingface.co"
    model: str = "Qwen/Qwen2.5-1.5B-Instruct"
    timeout_seconds: float = 30.0
    monthly_requests: int = 0  # Inference API requests allowed per calendar month (UTC); 0 = unlimited
    monthly_tokens: int = 0  # input + output tokens allowed per month; 0 = unlimited
    refine_reserve: float = 0.1  # fraction of the monthly allowance only the refiner may spend
    close_on_credits_exhausted: bool = True  # a 402 closes the fallback until the month rolls over


@dataclass
class StoreConfig:
    path: str = "var/hfops.db"


@dataclass
class DiscoveryConfig:
    min_downloads: int = 1000
    min_likes: int = 10
    licenses: list[str] = field(default_factory=lambda: list(DEFAULT_LICENSES))
    pipeline_tags: list[str] = field(default_factory=lambda: list(DEFAULT_PIPELINE_TAGS))
    libraries: list[str] = field(default_factory=lambda: list(DEFAULT_LIBRARIES))
    require_safetensors: bool = True


@dataclass
class EvalConfig:
    nightly_hour: int = 2
    nightly_minute: int = 0
    default_limit: int = 200
    bootstrap_samples: int = 1000
    data_dir: str = ""  # empty = the shipped data/ folder
    source: str = "local"  # local (shipped samples) | hub (datasets from the Hub)
    hub_max_rows: int = 2000  # rows streamed from the Hub when source = "hub"
    batch_size: int = 64  # examples per step (one commit, one encode call) of a run
    min_examples: int = 30  # fewer scored examples -> "keep shadowing" at best
    max_error_rate: float = 0.1  # candidate error rate above this -> "reject"
    max_retries: int = 2  # retries of a rate-limited/unavailable/timed-out inference call
    max_retry_wait_seconds: float = 10.0  # cap on one retry wait (Retry-After is honoured up to this)
    max_consecutive_errors: int = 20  # stop the run (resumable) when a backend keeps failing
    qa_max_new_tokens: int = 48
    starter_runs: bool = True  # hfops init queues the starter shadow runs once on a fresh store


@dataclass
class RefineConfig:
    enabled: bool = True
    budget_ms: int = 800
    fallback_deadline_ms: int = 500
    per_minute: int = 10
    per_hour: int = 100
    cooldown_seconds: float = 60.0
    credits_cooldown_seconds: float = 3600.0
    model: str = ""  # empty = [inference] model
    local_threshold: float = (
        0.75  # a local result at least this confident is returned without asking HF (>1 = always ask)
    )
    max_tokens: int = 200  # completion cap for the HF fallback
    limiter_path: str = ""  # shared rate-limit file; empty = next to the store (<store>.ratelimit.sqlite)
    # CPU threads for the local embedding model (1 = steady latency on a busy machine; 0 = torch default)
    torch_threads: int = 1


@dataclass
class ModelsConfig:
    """``[models]``: how models are acquired and run locally."""

    max_download_gb: float = 2.0  # largest download allowed (decimal GB, what the tree listing adds up to)
    auto_download: bool = True  # evals may pull a model on demand (as a job step) when it is not local
    cache_dir: str = ""  # HF hub cache; empty = HF_HUB_CACHE / huggingface_hub's default
    min_free_disk_gb: float = 1.0  # disk to leave free after a download
    memory_headroom: float = 1.2  # estimated memory = weights bytes x this, checked against available memory
    gguf_preference: list[str] = field(
        default_factory=lambda: ["Q4_K_M", "Q4_1", "Q4_0", "Q4_K_S", "Q5_K_M", "Q5_1", "Q5_0", "Q8_0"]
    )
    gguf_threads: int = 0  # llama.cpp threads; 0 = the machine's CPU count
    gguf_context: int = 4096  # llama.cpp context window (tokens)
    check_per_minute: int = 30  # evaluability checks (model_info + tree calls) per minute in the check job


@dataclass
class QueueConfig:
    """``[queue]``: where jobs wait.

    ``sqlite`` (the store's own file) or ``redis`` (``url``) for many machines.
    """

    backend: str = "sqlite"
    url: str = ""  # redis://host:6379/0 when backend = "redis"


@dataclass
class MetricsConfig:
    namespace: str = "sarvanom"
    port: int = 9108


@dataclass
class DemoConfig:
    enabled: bool = False


@dataclass
class PublishConfig:
    repo: str = ""  # default target ORG/NAME of `hfops publish` (private model repo)
    out_dir: str = ""  # where report files are written; empty = <store folder>/publish/run-<id>


@dataclass
class Settings:
    hub: HubConfig = field(default_factory=HubConfig)
    inference: InferenceConfig = field(default_factory=InferenceConfig)
    store: StoreConfig = field(default_factory=StoreConfig)
    discovery: DiscoveryConfig = field(default_factory=DiscoveryConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)
    refine: RefineConfig = field(default_factory=RefineConfig)
    metrics: MetricsConfig = field(default_factory=MetricsConfig)
    demo: DemoConfig = field(default_factory=DemoConfig)
    publish: PublishConfig = field(default_factory=PublishConfig)
    models: ModelsConfig = field(default_factory=ModelsConfig)
    queue: QueueConfig = field(default_factory=QueueConfig)
    source_file: str | None = None  # the TOML file these settings came from, if any

    @property
    def db_path(self) -> Path:
        return Path(self.store.path)

    @property
    def demo_mode(self) -> bool:
        """Read-only demo: forced inside a Hugging Face Space (``SPACE_ID`` set) or by config."""
        return self.demo.enabled or bool(os.environ.get("SPACE_ID"))


def _check_type(value: Any, annotation: Any, name: str) -> Any:
    """Return ``value`` coerced to ``annotation`` (int -> float only) or raise ConfigError."""
    origin = typing.get_origin(annotation)
    if origin in (list, tuple):
        (item_type,) = typing.get_args(annotation)[:1]
        if not isinstance(value, list):
            raise ConfigError(f"{name}: expected a list of {item_type.__name__}, got {type(value).__name__}")
        return [_check_type(item, item_type, f"{name}[{i}]") for i, item in enumerate(value)]
    if origin in (typing.Union, types.UnionType):
        errors = []
        for option in typing.get_args(annotation):
            if option is type(None) and value is None:
                return None
            try:
                return _check_type(value, option, name)
            except ConfigError as exc:
                errors.append(str(exc))
        raise ConfigError(errors[0])
    if annotation is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if annotation is int and isinstance(value, bool):
        raise ConfigError(f"{name}: expected int, got bool")
    if not isinstance(value, annotation):
        raise ConfigError(f"{name}: expected {annotation.__name__}, got {type(value).__name__} ({value!r})")
    return value


def _apply_section(section_obj: Any, values: dict[str, Any], section: str) -> None:
    hints = typing.get_type_hints(type(section_obj))
    known = {f.name for f in dataclasses.fields(section_obj)}
    for key, value in values.items():
        if key not in known:
            raise ConfigError(f"unknown key [{section}] {key} (known: {', '.join(sorted(known))})")
        setattr(section_obj, key, _check_type(value, hints[key], f"[{section}] {key}"))


def settings_from_mapping(data: dict[str, Any], source_file: str | None = None) -> Settings:
    """Build Settings from a parsed TOML mapping, validating every section and key."""
    settings = Settings(source_file=source_file)
    sections = {f.name for f in dataclasses.fields(Settings) if f.name != "source_file"}
    where = f"{source_file}: " if source_file else ""
    for section, values in data.items():
        if section not in sections:
            raise ConfigError(f"{where}unknown section [{section}] (known: {', '.join(sorted(sections))})")
        if not isinstance(values, dict):
            raise ConfigError(f"{where}[{section}] must be a table, got {type(values).__name__}")
        try:
            _apply_section(getattr(settings, section), values, section)
        except ConfigError as exc:
            raise ConfigError(f"{where}{exc}") from None
    return settings


# Value ranges: (section, key) -> (check, what the value must be). Checked after every load.
_RANGES: dict[tuple[str, str], tuple[Callable[[Any], bool], str]] = {
    ("hub", "page_size"): (lambda v: 1 <= v <= 10_000, "between 1 and 10000"),
    ("hub", "max_models"): (lambda v: v >= 0, ">= 0 (0 = no cap)"),
    ("hub", "deadline_seconds"): (lambda v: v > 0, "> 0"),
    ("hub", "max_backoff_seconds"): (lambda v: v >= 0, ">= 0"),
    ("hub", "request_timeout_seconds"): (lambda v: v > 0, "> 0"),
    ("hub", "full_sync_hours"): (lambda v: v >= 0, ">= 0"),
    ("hub", "ratelimit_reserve"): (lambda v: 0 <= v < 1, "a fraction in [0, 1)"),
    ("inference", "timeout_seconds"): (lambda v: v > 0, "> 0"),
    ("inference", "monthly_requests"): (lambda v: v >= 0, ">= 0 (0 = unlimited)"),
    ("inference", "monthly_tokens"): (lambda v: v >= 0, ">= 0 (0 = unlimited)"),
    ("inference", "refine_reserve"): (lambda v: 0 <= v < 1, "a fraction in [0, 1)"),
    ("discovery", "min_downloads"): (lambda v: v >= 0, ">= 0"),
    ("discovery", "min_likes"): (lambda v: v >= 0, ">= 0"),
    ("eval", "nightly_hour"): (lambda v: 0 <= v <= 23, "an hour 0-23"),
    ("eval", "nightly_minute"): (lambda v: 0 <= v <= 59, "a minute 0-59"),
    ("eval", "default_limit"): (lambda v: v >= 1, ">= 1"),
    ("eval", "bootstrap_samples"): (lambda v: v >= 0, ">= 0"),
    ("eval", "source"): (lambda v: v in ("local", "hub"), '"local" or "hub"'),
    ("eval", "hub_max_rows"): (lambda v: v >= 1, ">= 1"),
    ("eval", "batch_size"): (lambda v: 1 <= v <= 10_000, "between 1 and 10000"),
    ("eval", "min_examples"): (lambda v: v >= 1, ">= 1"),
    ("eval", "max_error_rate"): (lambda v: 0 <= v <= 1, "a fraction in [0, 1]"),
    ("eval", "max_retries"): (lambda v: v >= 0, ">= 0"),
    ("eval", "max_retry_wait_seconds"): (lambda v: v >= 0, ">= 0"),
    ("eval", "max_consecutive_errors"): (lambda v: v >= 1, ">= 1"),
    ("eval", "qa_max_new_tokens"): (lambda v: 1 <= v <= 4096, "between 1 and 4096"),
    ("refine", "budget_ms"): (lambda v: 50 <= v <= 60_000, "between 50 and 60000 ms"),
    ("refine", "fallback_deadline_ms"): (lambda v: v >= 0, ">= 0"),
    ("refine", "per_minute"): (lambda v: v >= 0, ">= 0"),
    ("refine", "per_hour"): (lambda v: v >= 0, ">= 0"),
    ("refine", "cooldown_seconds"): (lambda v: v >= 0, ">= 0"),
    ("refine", "credits_cooldown_seconds"): (lambda v: v >= 0, ">= 0"),
    ("refine", "local_threshold"): (lambda v: v >= 0, ">= 0 (above 1 = always ask the fallback)"),
    ("refine", "max_tokens"): (lambda v: 1 <= v <= 4096, "between 1 and 4096"),
    ("refine", "torch_threads"): (lambda v: v >= 0, ">= 0 (0 = torch default)"),
    ("metrics", "port"): (lambda v: 1 <= v <= 65_535, "a TCP port 1-65535"),
    ("models", "max_download_gb"): (lambda v: v > 0, "> 0"),
    ("models", "min_free_disk_gb"): (lambda v: v >= 0, ">= 0"),
    ("models", "memory_headroom"): (lambda v: v >= 1, ">= 1"),
    ("models", "gguf_threads"): (lambda v: v >= 0, ">= 0 (0 = all cores)"),
    ("models", "gguf_context"): (lambda v: 256 <= v <= 131_072, "between 256 and 131072"),
    ("models", "check_per_minute"): (lambda v: v >= 1, ">= 1"),
    ("queue", "backend"): (lambda v: v in ("sqlite", "redis"), '"sqlite" or "redis"'),
}


def validate(settings: Settings) -> Settings:
    """Check value ranges and relations between keys; a :class:`ConfigError` names the key and the rule."""
    where = f"{settings.source_file}: " if settings.source_file else ""
    for (section, key), (check, rule) in _RANGES.items():
        value = getattr(getattr(settings, section), key)
        if not check(value):
            raise ConfigError(f"{where}[{section}] {key} = {value!r} is out of range: must be {rule}")
    if settings.refine.per_hour and settings.refine.per_minute > settings.refine.per_hour:
        raise ConfigError(
            f"{where}[refine] per_hour = {settings.refine.per_hour} is below per_minute = "
            f"{settings.refine.per_minute}: an hour allows at least a minute's calls"
        )
    if settings.refine.fallback_deadline_ms > settings.refine.budget_ms:
        raise ConfigError(
            f"{where}[refine] fallback_deadline_ms = {settings.refine.fallback_deadline_ms} "
            "exceeds budget_ms = "
            f"{settings.refine.budget_ms}: the fallback must answer inside the budget"
        )
    if settings.queue.backend == "redis" and not settings.queue.url.startswith(
        ("redis://", "rediss://", "unix://")
    ):
        raise ConfigError(f'{where}[queue] url must be redis://host:port/db when backend = "redis"')
    return settings


def settings_to_mapping(settings: Settings) -> dict[str, Any]:
    """The sections of ``settings`` as a plain mapping.

    This is what a job stores; :func:`settings_from_mapping` reads it. Holds no secret: secrets never live in
    Settings.
    """
    data = dataclasses.asdict(settings)
    data.pop("source_file", None)
    return data


def load_settings(config_path: str | os.PathLike[str] | None = None, **overrides: Any) -> Settings:
    """Load settings: defaults, then the TOML file, then ``overrides`` (``"section.key": value``).

    ``config_path=None`` reads ``hfops.toml`` from the working directory when it exists; an explicit path
    that does not exist is an error. ``None`` values in ``overrides`` are ignored (flag not given).
    """
    path: Path | None
    if config_path is None:
        path = Path(DEFAULT_CONFIG_FILE) if Path(DEFAULT_CONFIG_FILE).is_file() else None
    else:
        path = Path(config_path)
        if not path.is_file():
            raise ConfigError(f"config file not found: {path}")
    data: dict[str, Any] = {}
    if path is not None:
        try:
            data = tomllib.loads(path.read_text(encoding="utf-8"))
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"{path}: invalid TOML: {exc}") from None
    settings = settings_from_mapping(data, str(path) if path else None)
    for dotted, value in overrides.items():
        if value is None:
            continue
        section, _, key = dotted.partition(".")
        _apply_section(getattr(settings, section), {key: value}, section)
    return validate(settings)


def api_key() -> str | None:
    """The inference/read token from ``HUGGINGFACE_API_KEY`` (never stored, logged or shown)."""
    return os.environ.get(API_KEY_ENV) or None


def write_token() -> str | None:
    """The Hub write token from ``HUGGINGFACE_WRITE_TOKEN`` (used by publish only)."""
    return os.environ.get(WRITE_TOKEN_ENV) or None


def secret_status(value: str | None) -> str:
    """What the UI may show about a secret: ``set`` or ``not set``."""
    return "set" if value else "not set"
