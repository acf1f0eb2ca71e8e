"""What is on this machine: the local HF cache, folders registered with ``hfops models add``, file hashes,
memory estimates and the capacity check before loading."""

from __future__ import annotations

import hashlib
import json
import math
import os
import re
import struct
import threading
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hfops.errors import ModelError, ModelRefusedError
from hfops.models.files import FileSelection, declared_quantization, select_files
from hfops.models.settings import cache_dir, gigabytes, models_settings

COMMIT = re.compile(r"^[0-9a-f]{40}$")
SAFETENSORS_DTYPE_BYTES = {
    "F64": 8,
    "I64": 8,
    "U64": 8,
    "F32": 4,
    "I32": 4,
    "U32": 4,
    "F16": 2,
    "BF16": 2,
    "I16": 2,
    "U16": 2,
    "F8_E4M3": 1,
    "F8_E5M2": 1,
    "I8": 1,
    "U8": 1,
    "BOOL": 1,
}
_hash_memo: dict[tuple[str, int, int], str] = {}
_hash_lock = threading.Lock()


@dataclass
class LocalCopy:
    """A usable copy of a model on disk (HF cache snapshot or a registered folder)."""

    model_id: str
    folder: Path
    revision: str  # commit sha for the HF cache
    selection: FileSelection
    refs: list[str] = field(default_factory=list)

    @property
    def path(self) -> Path:
        """The folder, or the ``.gguf`` file for a GGUF model."""
        return self.folder / self.selection.files[0] if self.selection.format == "gguf" else self.folder

    def size_bytes(self) -> int:
        return sum(
            (self.folder / p).stat().st_size for p in self.selection.files if (self.folder / p).exists()
        )


def repo_files(folder: Path) -> list[str]:
    """Every file below ``folder`` as a repo path (``a/b.json``), hidden folders skipped."""
    found = []
    for root, dirs, files in os.walk(folder):
        dirs[:] = [d for d in dirs if not d.startswith(".")]
        for name in files:
            rel = os.path.relpath(os.path.join(root, name), folder).replace(os.sep, "/")
            found.append(rel)
    return found


def select_local(folder: Path, task: str, settings: Any) -> FileSelection:
    paths = repo_files(folder)
    sizes = {p: (folder / p).stat().st_size for p in paths}
    return select_files(paths, sizes, task=task, gguf_preference=models_settings(settings).gguf_preference)


def storage_name(model_id: str) -> str:
    """The HF cache's folder name for ``model_id`` (``models--org--name``)."""
    return f"models--{model_id.replace('/', '--')}"


def _storage(model_id: str, settings: Any) -> Path:
    return cache_dir(settings) / storage_name(model_id)


def cached_copy(
    model_id: str, settings: Any, *, revision: str | None = None, task: str = ""
) -> LocalCopy | None:
    """A complete snapshot of ``model_id`` in the HF cache (no network): pinned ``revision`` when given
    (a sha, or a branch/tag recorded in ``refs/``), else ``refs/main``, else the newest usable snapshot."""
    if "/" not in model_id:
        return None
    storage = _storage(model_id, settings)
    snapshots = storage / "snapshots"
    if not snapshots.is_dir():
        return None
    refs = {p.name: p.read_text().strip() for p in (storage / "refs").glob("*") if p.is_file()}
    wanted = revision or "main"
    commit = wanted if COMMIT.match(wanted) else refs.get(wanted)
    candidates: list[Path]
    if commit:
        candidates = [snapshots / commit]
    elif revision:
        return None  # a pinned branch/tag that was never fetched
    else:
        candidates = sorted(snapshots.iterdir(), key=lambda d: d.stat().st_mtime, reverse=True)
    for folder in candidates:
        if not folder.is_dir():
            continue
        selection = select_local(folder, task, settings)
        if selection.files and _complete(storage, folder, selection, task, settings):
            return LocalCopy(
                model_id,
                folder,
                folder.name,
                selection,
                sorted(r for r, c in refs.items() if c == folder.name),
            )
    return None


def _complete(storage: Path, folder: Path, selection: FileSelection, task: str, settings: Any) -> bool:
    """Every file the plan would fetch is present; the plan is rebuilt from the tree listing that
    huggingface_hub caches per commit (``trees/<sha>.json``) when there is one."""
    tree = storage / "trees" / f"{folder.name}.json"
    expected = selection.files
    if tree.is_file():
        try:
            listed = json.loads(tree.read_text()).get("files", {})
            sizes = {p: int(v.get("lfs_size") or v.get("size") or 0) for p, v in listed.items()}
        except (OSError, ValueError, AttributeError):
            return False
        prefs = models_settings(settings).gguf_preference
        expected = select_files(sizes, sizes, task=task, gguf_preference=prefs).files or expected
    return all((folder / p).is_file() for p in expected)


def cached_hashes(copy: LocalCopy) -> dict[str, str]:
    """File hashes of a cache snapshot for free: each blob is named by its ETag (sha256 for LFS files)."""
    out = {}
    for rel in copy.selection.files:
        target = (copy.folder / rel).resolve()
        out[rel] = target.name if target.parent.name == "blobs" else sha256_file(copy.folder / rel)
    return out


def sha256_file(path: Path) -> str:
    """sha256 of a file (memoised by path, size and mtime)."""
    stat = path.stat()
    key = (str(path.resolve()), stat.st_size, stat.st_mtime_ns)
    with _hash_lock:
        if key in _hash_memo:
            return _hash_memo[key]
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    value = digest.hexdigest()
    with _hash_lock:
        _hash_memo[key] = value
    return value


def file_hashes(folder: Path, files: Iterable[str]) -> dict[str, str]:
    return {rel: sha256_file(folder / rel) for rel in files}


# --- memory ----------------------------------------------------------------------------------------------


def safetensors_parameters(path: Path) -> dict[str, int]:
    """dtype -> parameter count from a ``.safetensors`` header (reads only the header)."""
    with path.open("rb") as fh:
        (length,) = struct.unpack("<Q", fh.read(8))
        if length > 100_000_000:
            raise ModelError(f"{path.name}: not a safetensors file (header of {length} bytes)")
        header = json.loads(fh.read(length))
    counts: dict[str, int] = {}
    for name, tensor in header.items():
        if name == "__metadata__" or not isinstance(tensor, dict):
            continue
        counts[tensor["dtype"]] = counts.get(tensor["dtype"], 0) + math.prod(tensor.get("shape") or [1])
    return counts


def weights_bytes(parameters: dict[str, int]) -> int:
    return sum(count * SAFETENSORS_DTYPE_BYTES.get(dtype.upper(), 4) for dtype, count in parameters.items())


def estimated_memory(folder: Path, selection: FileSelection, settings: Any) -> tuple[int, str]:
    """Bytes a load would take (weights x ``[models] memory_headroom``) and how that was worked out."""
    headroom = models_settings(settings).memory_headroom
    if selection.format == "gguf":
        size = (folder / selection.files[0]).stat().st_size
        return int(size * headroom), f"GGUF file size {gigabytes(size)} x {headroom:g}"
    counts: dict[str, int] = {}
    for rel in selection.weights:
        for dtype, n in safetensors_parameters(folder / rel).items():
            counts[dtype] = counts.get(dtype, 0) + n
    params = sum(counts.values())
    dtypes = "/".join(sorted(counts)) or "?"
    return int(weights_bytes(counts) * headroom), f"{params / 1e6:.0f}M parameters ({dtypes}) x {headroom:g}"


def available_memory() -> int:
    """Bytes of memory available to a new allocation (``MemAvailable``)."""
    try:
        import psutil

        return int(psutil.virtual_memory().available)
    except ImportError:  # /proc/meminfo is the same number on Linux
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    return 0


def check_capacity(
    model_id: str, folder: Path, selection: FileSelection, settings: Any, available: int | None = None
) -> int:
    """Refuse (``no_memory``) a load whose estimate exceeds the available memory; the estimate in bytes."""
    need, how = estimated_memory(folder, selection, settings)
    free = available_memory() if available is None else available
    if need > free:
        raise ModelRefusedError(
            f"{model_id} needs about {gigabytes(need)} of memory to load ({how}) but {gigabytes(free)} "
            "is available; not loaded",
            "no_memory",
        )
    return need


# Pipeline tags the Hub gives by library or architecture when a card declares none (what discovery and the
# eval tasks read: feature-extraction / sentence-similarity -> retrieval, text-generation -> qa).
KNOWN_PIPELINES = (
    "sentence-similarity",
    "feature-extraction",
    "text-generation",
    "text2text-generation",
    "question-answering",
)
GGUF_EMBEDDING_ARCHITECTURES = ("bert", "nomic-bert", "jina-bert-v2", "nomic-bert-moe")


def gguf_metadata(path: Path) -> dict[str, Any]:
    """``general.*`` facts of a GGUF file (licence, architecture, name, organization); {} when unreadable."""
    try:
        from gguf import GGUFReader

        fields = GGUFReader(str(path)).fields
    except Exception:  # not a GGUF file we can read: it has no facts to tell
        return {}
    out: dict[str, Any] = {}
    for key in ("license", "architecture", "name", "organization", "basename", "size_label"):
        field_ = fields.get(f"general.{key}")
        if field_ is None:
            continue
        try:
            value = field_.contents()
        except Exception:  # a malformed field: skip it
            continue
        if isinstance(value, str) and value.strip():
            out[key] = value.strip()
    if "tokenizer.chat_template" in fields:
        out["chat_template"] = True
    return out


def inferred_pipeline(facts: dict[str, Any], card_tags: list[str]) -> tuple[str | None, str]:
    """The pipeline tag when the card declares none, and how it was found (as the Hub infers it)."""
    if facts.get("library_name") == "sentence-transformers":
        return "sentence-similarity", "library sentence-transformers"
    for tag in card_tags:
        if tag in KNOWN_PIPELINES:
            return tag, f"card tag {tag}"
    architectures = [str(a) for a in (facts.get("config") or {}).get("architectures") or []]
    for arch in architectures:
        if arch.endswith(("ForCausalLM", "LMHeadModel")):
            return "text-generation", f"architecture {arch}"
        if arch.endswith("ForConditionalGeneration") and ("T5" in arch or "Bart" in arch):
            return "text2text-generation", f"architecture {arch}"
        if arch.endswith("ForQuestionAnswering"):
            return "question-answering", f"architecture {arch}"
    gguf_arch = (facts.get("gguf") or {}).get("architecture")
    if gguf_arch:
        if gguf_arch in GGUF_EMBEDDING_ARCHITECTURES:
            return "feature-extraction", f"GGUF architecture {gguf_arch}"
        return "text-generation", f"GGUF architecture {gguf_arch}"
    return None, "not declared"


def folder_facts(folder: Path, selection: FileSelection | None = None) -> dict[str, Any]:
    """What a local folder says about itself: config, licence and pipeline tag (card front matter, else the
    GGUF metadata, else inferred as the Hub does), library, and the GGUF file's ``general.*`` facts."""
    facts: dict[str, Any] = {}
    config_path = folder / "config.json"
    if config_path.is_file():
        try:
            config = json.loads(config_path.read_text(encoding="utf-8"))
        except ValueError as exc:
            raise ModelError(f"{config_path}: invalid JSON ({exc})") from None
        if not isinstance(config, dict):
            raise ModelError(f"{config_path}: not a JSON object")
        facts["config"] = {
            k: config[k] for k in ("architectures", "model_type", "quantization_config") if k in config
        }
        facts["quant_method"] = declared_quantization(config)
    card_tags: list[str] = []
    readme = folder / "README.md"
    if readme.is_file():
        from huggingface_hub.repocard import metadata_load

        try:
            card = metadata_load(readme) or {}
        except Exception:  # a card whose front matter is not YAML: no card facts
            card = {}
        for key in ("license", "pipeline_tag", "library_name", "base_model", "language"):
            if key in card:
                facts[key] = card[key]
        if isinstance(card.get("tags"), list):
            card_tags = [str(t) for t in card["tags"]]
    if isinstance(facts.get("license"), list):  # the card may list several; the first is the licence id
        facts["license"] = facts["license"][0] if facts["license"] else None
    if (folder / "modules.json").is_file() and "library_name" not in facts:
        facts["library_name"] = "sentence-transformers"
    if selection is not None and selection.format == "gguf":
        meta = gguf_metadata(folder / selection.files[0])
        facts["gguf"] = meta
        if not facts.get("license") and meta.get("license"):
            facts["license"] = str(meta["license"]).lower()
            facts["license_source"] = "GGUF general.license"
    if facts.get("license"):
        facts["license"] = str(facts["license"]).strip().lower()
        facts.setdefault("license_source", "README.md front matter")
    if facts.get("pipeline_tag"):
        facts["pipeline_tag_source"] = "README.md front matter"
    else:
        tag, how = inferred_pipeline(facts, card_tags)
        if tag:
            facts["pipeline_tag"], facts["pipeline_tag_source"] = tag, f"inferred from {how}"
    return facts
