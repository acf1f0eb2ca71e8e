"""Generators: chat messages -> a reply, through the HF Inference API (router) or local transformers."""

from __future__ import annotations

from abc import ABC, abstractmethod
from pathlib import Path
from typing import Any, Protocol

from hfops import config as hfconfig
from hfops.config import Settings
from hfops.errors import BackendError
from hfops.evals.backends.base import quiet_transformers
from hfops.evals.backends.retries import call_with_retries
from hfops.ledger import inference_calls
from hfops.models import loaded


class ChatGenerator(Protocol):
    """What a generative QA system needs.

    Anything with these attributes and ``generate`` (e.g. a GGUF model).
    """

    model_id: str
    backend: str
    revision: str

    def generate(self, messages: list[dict[str, str]], max_new_tokens: int) -> str: ...


class Generator(ABC):
    """Produces a reply to chat messages (greedy, bounded length)."""

    model_id: str
    backend: str
    revision: str

    @abstractmethod
    def generate(self, messages: list[dict[str, str]], max_new_tokens: int) -> str:
        """The reply text; raises :class:`BackendError`."""


class ChatApiGenerator(Generator):
    """HF Inference API (router) chat completion at ``{[inference] base_url}/v1/chat/completions``."""

    backend = "hf-inference:chat"
    revision = "main"

    def __init__(self, model_id: str, settings: Settings) -> None:
        self.model_id = model_id
        self.settings = settings

    def generate(self, messages: list[dict[str, str]], max_new_tokens: int) -> str:
        from huggingface_hub import InferenceClient

        client = InferenceClient(
            base_url=self.settings.inference.base_url.rstrip("/"),
            token=hfconfig.api_key(),
            timeout=self.settings.inference.timeout_seconds,
        )
        with inference_calls(self.settings.inference.base_url):
            reply: Any = call_with_retries(
                lambda: client.chat_completion(
                    messages, model=self.model_id, max_tokens=max_new_tokens, temperature=0.0
                ),
                self.settings,
            )
        try:
            content = reply.choices[0].message.content
        except (AttributeError, IndexError, TypeError):
            raise BackendError(f"{self.model_id}: invalid chat completion response (no choices)") from None
        if not isinstance(content, str):
            raise BackendError(f"{self.model_id}: invalid chat completion response (no content)")
        return content


class LocalTextGenerator(Generator):
    """transformers text-generation for a model in the local HF cache (greedy decoding, CPU)."""

    backend = "transformers:local"

    def __init__(self, model_id: str, path: Path, revision: str) -> None:
        self.model_id, self.path, self.revision = model_id, path, revision

    def _load(self) -> Any:
        quiet_transformers()
        from transformers import pipeline

        return pipeline("text-generation", model=str(self.path), device="cpu")

    def generate(self, messages: list[dict[str, str]], max_new_tokens: int) -> str:
        pipe = loaded.shared(f"tg:{self.path}", self._load, f"{self.model_id} (transformers)")
        tokenizer = pipe.tokenizer
        try:
            if getattr(tokenizer, "chat_template", None):
                prompt = tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
            else:
                prompt = "\n\n".join(m["content"] for m in messages) + "\n"
            out = pipe(
                prompt,
                max_new_tokens=max_new_tokens,
                do_sample=False,
                return_full_text=False,
                pad_token_id=tokenizer.pad_token_id or tokenizer.eos_token_id,
            )
        except Exception as exc:  # generation failures are per-example errors
            raise BackendError(
                f"{self.model_id}: local generation failed: {type(exc).__name__}: {exc}"
            ) from exc
        return str(out[0]["generated_text"])
