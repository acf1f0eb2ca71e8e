"""Which files of a model repo inference needs, which are refused, and what the weights are.

Pure functions over file names (and sizes): used on the Hub's tree listing before any byte moves, on the
local HF cache, and on local folders (``hfops models add``).
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

PICKLE_SUFFIXES = (".bin", ".pt", ".pth", ".ckpt", ".pkl", ".pickle")
PICKLE_PATTERNS = tuple(f"*{suffix}" for suffix in PICKLE_SUFFIXES)
# Exports for other runtimes: never needed by the local backends, often large.
FOREIGN_DIRS = ("onnx/", "openvino/", "coreml/", "flax/", "tf/", "mlx/", "gguf/", "original/")
FOREIGN_SUFFIXES = (".onnx", ".onnx_data", ".msgpack", ".h5", ".ot", ".tflite", ".mlmodel", ".npz", ".xml")
# Small files inference reads: configs, tokenizers, sentence-transformers module configs, the card.
SUPPORT_PATTERNS = ("*.json", "*.txt", "*.model", "*.tiktoken", "README.md", "*.jinja", "LICENSE*")
GGUF_QUANT = re.compile(
    r"(?i)(?:^|[-_.])(IQ\d_[A-Z]+|Q\d_K_[SML]|Q\d_K|Q\d_\d|Q\d_0|F16|BF16|F32|FP16)(?:[-_.]|$)"
)
LIBRARY_FOR_QUANT = {  # quant_method in config.json -> the package that runs it (import name, pip name)
    "gptq": ("gptqmodel", "gptqmodel"),
    "awq": ("awq", "autoawq"),
    "bitsandbytes": ("bitsandbytes", "bitsandbytes"),
    "fp8": ("", "a CUDA GPU (fp8 kernels)"),
    "compressed-tensors": ("compressed_tensors", "compressed-tensors"),
    "hqq": ("hqq", "hqq"),
    "quanto": ("optimum.quanto", "optimum-quanto"),
    "eetq": ("eetq", "eetq"),
    "aqlm": ("aqlm", "aqlm"),
}


TASK_FOR_PIPELINE = {
    "text-generation": "qa",
    "text2text-generation": "qa",
    "question-answering": "qa",
    "feature-extraction": "retrieval",
    "sentence-similarity": "retrieval",
}


def task_for(pipeline_tag: str | None) -> str:
    """The eval task a Hub pipeline tag serves (``qa``, ``retrieval``), or ``""``."""
    return TASK_FOR_PIPELINE.get(pipeline_tag or "", "")


def is_pickle(path: str) -> bool:
    return path.lower().endswith(PICKLE_SUFFIXES)


def is_foreign(path: str) -> bool:
    lower = path.lower()
    return lower.startswith(FOREIGN_DIRS) or lower.endswith(FOREIGN_SUFFIXES)


def is_safetensors(path: str) -> bool:
    return path.lower().endswith(".safetensors") and not is_foreign(path)


def is_gguf(path: str) -> bool:
    return path.lower().endswith(".gguf")


def is_support(path: str) -> bool:
    name = path.rsplit("/", 1)[-1]
    return (
        not is_foreign(path)
        and not is_pickle(path)
        and any(fnmatch.fnmatch(name, pattern) for pattern in SUPPORT_PATTERNS)
    )


def gguf_quantization(path: str) -> str:
    """The quantization named in a GGUF file name (``Q4_1``, ``Q4_K_M``...), or ``""``."""
    match = GGUF_QUANT.search(path.rsplit("/", 1)[-1].removesuffix(".gguf"))
    return match.group(1).upper() if match else ""


def choose_gguf(paths: Iterable[str], sizes: Mapping[str, int], preference: Sequence[str]) -> str | None:
    """The one GGUF file to use: the first quantization in ``preference`` present, else the smallest.

    Split GGUF files (``-00001-of-00003``) and multimodal projectors (``mmproj``) are skipped.
    """
    candidates = [
        p for p in paths if is_gguf(p) and "mmproj" not in p.lower() and not re.search(r"-\d{5}-of-\d{5}", p)
    ]
    if not candidates:
        return None
    for quant in preference:
        matching = [p for p in candidates if gguf_quantization(p) == quant.upper()]
        if matching:
            return min(matching, key=lambda p: (sizes.get(p, 0), p))
    return min(candidates, key=lambda p: (sizes.get(p, 0), p))


@dataclass
class FileSelection:
    """What to fetch (or load) from a repo: ``files`` is empty when ``refusal`` says why nothing can be."""

    format: str = ""  # "safetensors" | "gguf" | ""
    files: list[str] = field(default_factory=list)
    weights: list[str] = field(default_factory=list)
    quantization: str = ""  # gguf quant type, or a declared safetensors quant_method
    refusal: str = ""  # "pickle_only" | "no_weights" | ""
    message: str = ""

    def size(self, sizes: Mapping[str, int]) -> int:
        return sum(int(sizes.get(p, 0)) for p in self.files)


def _safetensors_weights(paths: Sequence[str]) -> list[str]:
    weights = [p for p in paths if is_safetensors(p)]
    # Mistral-style repos ship the same weights twice (consolidated for their runtime, shards for
    # transformers).
    preferred = [p for p in weights if not p.rsplit("/", 1)[-1].startswith("consolidated")]
    return preferred or weights


def select_files(
    paths: Iterable[str],
    sizes: Mapping[str, int] | None = None,
    *,
    task: str = "",
    gguf_preference: Sequence[str] = (),
) -> FileSelection:
    """The files inference needs: configs and tokenizers plus ``*.safetensors`` or one ``*.gguf``.

    ``task="qa"`` prefers a GGUF file when the repo has one (it runs natively on CPU); retrieval needs
    safetensors (sentence-transformers). Pickle weights are never selected: a repo with only those is
    refused (``pickle_only``).
    """
    all_paths = sorted(set(paths))
    sizes = sizes or {}
    support = [p for p in all_paths if is_support(p)]
    safetensors = _safetensors_weights(all_paths)
    gguf = choose_gguf(all_paths, sizes, gguf_preference) if task != "retrieval" else None
    if gguf is not None and (task == "qa" or not safetensors):
        return FileSelection("gguf", [gguf], [gguf], gguf_quantization(gguf))
    if safetensors:
        return FileSelection("safetensors", sorted({*support, *safetensors}), safetensors)
    pickles = [p for p in all_paths if is_pickle(p) and not is_foreign(p)]
    if pickles:
        shown = ", ".join(pickles[:3]) + (f" (+{len(pickles) - 3} more)" if len(pickles) > 3 else "")
        return FileSelection(
            refusal="pickle_only",
            message=f"has only pickle weights ({shown}); hfops never downloads or loads pickle files "
            "(they can run code): it needs *.safetensors or *.gguf weights",
        )
    if any(is_gguf(p) for p in all_paths) and task == "retrieval":
        return FileSelection(
            refusal="no_weights", message="has only GGUF weights; retrieval needs *.safetensors"
        )
    return FileSelection(refusal="no_weights", message="has no *.safetensors or *.gguf weights")


def declared_quantization(config: Mapping[str, object] | None) -> str:
    """``quant_method`` of a ``quantization_config`` in a model config (``""`` when none)."""
    if not isinstance(config, Mapping):
        return ""
    quant = config.get("quantization_config")
    if isinstance(quant, Mapping):
        method = quant.get("quant_method") or ("bitsandbytes" if quant.get("load_in_4bit") else "")
        return str(method or "").lower()
    return ""


def quantization_blocker(method: str) -> str:
    """``""`` when a declared quantization can run here, else ``"needs X"`` (the missing package
    or device)."""
    if not method:
        return ""
    import importlib.util

    module, requirement = LIBRARY_FOR_QUANT.get(method, ("", f"a runtime for {method!r}"))
    if module:
        try:
            if importlib.util.find_spec(module) is not None:
                return ""
        except (ImportError, ValueError):
            pass
    return f"needs {requirement}"
