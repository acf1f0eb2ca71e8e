"""Local generation from one GGUF file (the Hub's usual quantized format for small models).

:class:`GGUFGenerator` runs the file with llama.cpp (``llama-cpp-python``): native Q4/Q5/Q8 kernels on CPU,
the chat template stored in the file, greedy decoding (``temperature=0``), so re-runs reproduce.
:class:`TransformersGGUFGenerator` is the alternative measured against it (transformers' GGUF loader
dequantizes to fp32 torch weights); see docs/performance.md, "Models", for why llama.cpp is the default.

Both follow the evals generator interface: ``model_id``, ``backend``, ``revision`` and
``generate(messages, max_new_tokens) -> str`` raising :class:`~hfops.errors.BackendError`. Models load
lazily on the first call, once per process and file (after the capacity check), through the process's one
cache of loaded models (:mod:`hfops.models.loaded`: llama.cpp contexts are used under its per-model lock and
closed at exit).
"""

from __future__ import annotations

import os
import threading
from pathlib import Path
from typing import Any

from hfops.errors import BackendError, ModelError
from hfops.models import loaded
from hfops.models.settings import models_settings


def llama_cpp_available() -> bool:
    import importlib.util

    return importlib.util.find_spec("llama_cpp") is not None


class GGUFGenerator:
    """Greedy chat generation from a ``.gguf`` file with llama.cpp."""

    backend = "llama.cpp:gguf"

    def __init__(
        self,
        model_id: str,
        path: Path,
        revision: str,
        *,
        n_ctx: int = 4096,
        n_threads: int = 0,
        settings: Any = None,
    ) -> None:
        self.model_id, self.path, self.revision = model_id, Path(path), revision
        self.n_ctx = n_ctx
        # 0 = auto: decode on 1 thread, prompts on every core. Token-by-token decoding is too small a job to
        # split on a shared 2-core machine (1 thread: 22-24 tokens/s, 2 threads: 16 at load 12), while prompt
        # processing (a batch) still gains from a second thread (1.6 vs 1.8 s per QA prompt).
        self.n_threads = n_threads or 1
        self.n_threads_batch = n_threads or os.cpu_count() or 1
        self.settings = settings

    def _load(self) -> Any:
        # llama.cpp's OpenMP threads spin at barriers by default: on a busy 2-core machine a spinning thread
        # starves the other and generation drops ~15x (measured: 22 -> 1.3 tokens/s). Passive waits avoid it.
        os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
        try:
            from llama_cpp import Llama
        except ImportError:
            raise BackendError(
                f"{self.model_id}: the GGUF runtime is not installed (pip install llama-cpp-python)"
            ) from None
        _without_extra_buffer_types()
        try:
            return Llama(
                model_path=str(self.path),
                n_ctx=self.n_ctx,
                n_threads=self.n_threads,
                n_threads_batch=self.n_threads_batch,
                n_batch=512,
                seed=0,
                verbose=False,
            )
        except (ValueError, RuntimeError, OSError) as exc:
            raise BackendError(f"{self.model_id}: cannot load {self.path.name}: {exc}") from None

    @property
    def _key(self) -> tuple[str, ...]:
        return ("llama.cpp", str(self.path), str(self.n_ctx), str(self.n_threads), str(self.n_threads_batch))

    @property
    def model(self) -> Any:
        return loaded.shared(self._key, self._load, f"{self.model_id} ({self.path.name}, llama.cpp)")

    @property
    def lock(self) -> threading.Lock:
        """Held while generating: one llama.cpp context is not safe to share between threads."""
        return loaded.use_lock(self._key)

    def load(self) -> float:
        """Load now (outside any timed section); seconds it took (0 when already loaded)."""
        import time

        started = time.perf_counter()
        self.model  # noqa: B018 - loads on first access
        return time.perf_counter() - started

    def generate(self, messages: list[dict[str, str]], max_new_tokens: int) -> str:
        model = self.model
        try:
            with self.lock:
                reply = model.create_chat_completion(
                    messages=messages,
                    max_tokens=max_new_tokens,
                    temperature=0.0,
                    top_k=1,
                    top_p=1.0,
                    min_p=0.0,
                    repeat_penalty=1.0,
                    seed=0,
                )
        except ValueError as exc:  # e.g. the prompt is longer than the context window
            raise BackendError(f"{self.model_id}: local generation failed: {exc}") from None
        try:
            content = reply["choices"][0]["message"]["content"]
        except (KeyError, IndexError, TypeError):
            raise BackendError(f"{self.model_id}: llama.cpp returned no message") from None
        return str(content or "")

    def count_tokens(self, text: str) -> int:
        return len(self.model.tokenize(text.encode("utf-8"), add_bos=False, special=True))


class TransformersGGUFGenerator:
    """The same file through transformers' GGUF loader (dequantized to fp32 torch weights)."""

    backend = "transformers:gguf"

    def __init__(self, model_id: str, path: Path, revision: str, *, n_threads: int = 0) -> None:
        self.model_id, self.path, self.revision = model_id, Path(path), revision
        self.n_threads = n_threads

    def _load(self) -> Any:
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()
        hf_logging.set_verbosity_error()
        torch.set_flush_denormal(True)
        if self.n_threads:
            torch.set_num_threads(self.n_threads)
        folder, name = str(self.path.parent), self.path.name
        tokenizer = AutoTokenizer.from_pretrained(folder, gguf_file=name)
        model = AutoModelForCausalLM.from_pretrained(folder, gguf_file=name, dtype=torch.float32)
        model.eval()
        return tokenizer, model

    @property
    def model(self) -> Any:
        key = ("transformers", str(self.path))
        return loaded.shared(key, self._load, f"{self.model_id} ({self.path.name}, transformers)")

    def load(self) -> float:
        import time

        started = time.perf_counter()
        self.model  # noqa: B018
        return time.perf_counter() - started

    def generate(self, messages: list[dict[str, str]], max_new_tokens: int) -> str:
        import torch

        tokenizer, model = self.model
        try:
            inputs = tokenizer.apply_chat_template(
                messages, add_generation_prompt=True, return_tensors="pt", return_dict=True
            )
            with torch.inference_mode():
                out = model.generate(
                    **inputs,
                    max_new_tokens=max_new_tokens,
                    do_sample=False,
                    pad_token_id=tokenizer.eos_token_id,
                )
        except Exception as exc:  # torch/tokenizer failures are per-example errors
            raise BackendError(
                f"{self.model_id}: local generation failed: {type(exc).__name__}: {exc}"
            ) from exc
        return str(tokenizer.decode(out[0][inputs["input_ids"].shape[1] :], skip_special_tokens=True))


def gguf_generator(resolved: Any, settings: Any, *, check_capacity: bool = True) -> GGUFGenerator:
    """A :class:`GGUFGenerator` for a resolved GGUF model (``format == "gguf"``), capacity checked first."""
    if getattr(resolved, "format", "") != "gguf" or resolved.path is None:
        raise ModelError(f"{resolved.model_id} is not a local GGUF model (format {resolved.format!r})")
    if check_capacity:
        resolved.check_capacity(settings)
    mconf = models_settings(settings)
    return GGUFGenerator(
        resolved.model_id,
        resolved.path,
        resolved.revision,
        n_ctx=mconf.gguf_context,
        n_threads=mconf.gguf_threads,
        settings=settings,
    )


def _without_extra_buffer_types() -> None:
    """Load models without llama.cpp's extra CPU buffer types (AMX, weight repacking): on a CPU that
    advertises AMX, a native build's ``ggml_backend_amx_mul_mat`` crashed the process (SIGSEGV) on the
    first prompt batch of a chat completion. llama-cpp-python's ``Llama`` takes no option for it, so its
    model defaults are wrapped once (``use_extra_bufts = False``, llama.cpp's ``--no-extra-bufts``)."""
    import llama_cpp.llama_cpp as bindings

    defaults = bindings.llama_model_default_params
    if getattr(defaults, "_hfops_no_extra_bufts", False):
        return

    def model_defaults() -> Any:
        params = defaults()
        params.use_extra_bufts = False
        return params

    model_defaults._hfops_no_extra_bufts = True  # type: ignore[attr-defined]
    bindings.llama_model_default_params = model_defaults
