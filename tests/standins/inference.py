"""Stand-in for the HF Inference router.

It serves OpenAI-compatible chat completions and hf-inference feature extraction.

Routes (same paths as https://router.huggingface.co):
- ``POST /v1/chat/completions``: OpenAI chat body; replies ``{"choices": [{"message": {"content": ...}}]}``.
  The content is the ``reply`` set on the server (default: a JSON refinement of the last user message).
- ``POST /hf-inference/models/<model id>/pipeline/feature-extraction``: ``{"inputs": str | [str]}``;
  replies deterministic unit vectors (``dim`` wide) derived from a hash of the model id and each text.
- ``POST /v1/embeddings`` is not served (the real router serves feature extraction as above).

Switchable behaviours (``server.behaviour = ...`` or ``POST /_control {"behaviour": ...}``):
``fast``, ``slow`` (400 ms), ``hanging`` (5 s), ``rate_limited`` (429 + Retry-After), ``unavailable`` (503),
``credits`` (402), ``invalid_json`` (200 with a body that is not JSON), ``garbage`` (valid JSON, wrong shape),
``echo_token`` (401 whose body and X-Error-Message echo the Authorization header, as careless servers do).
``down`` is simulated by stopping the server (connection refused). Every request is counted and logged
(method, path, headers, body) so tests can check what the client sent — across processes, too.
"""

from __future__ import annotations

import hashlib
import json
import math
import threading
import time
from http.server import BaseHTTPRequestHandler
from typing import Any

from tests.standins.base import LocalServer, QuietHandler

# The HUGGINGFACE_API_KEY tests set (fake: the stand-in accepts any Bearer token).
TEST_API_KEY = "hf_evaltestkey0123456789"
BEHAVIOURS = (
    "fast",
    "slow",
    "hanging",
    "rate_limited",
    "unavailable",
    "credits",
    "invalid_json",
    "garbage",
    "echo_token",
)


def fake_embedding(text: str, dim: int = 384, model: str = "") -> list[float]:
    """Deterministic unit vector for ``text`` (stand-in for a real embedding model); another ``model`` gives
    other vectors, so two models' runs rank differently, as real models do."""
    values: list[float] = []
    counter = 0
    seed = f"{model}\n" if model else ""
    while len(values) < dim:
        digest = hashlib.sha256(f"{seed}{counter}:{text}".encode()).digest()
        values.extend((b - 127.5) / 127.5 for b in digest)
        counter += 1
    values = values[:dim]
    norm = math.sqrt(sum(v * v for v in values)) or 1.0
    return [v / norm for v in values]


def default_reply(user_message: str) -> str:
    """A valid refinement JSON answer for ``user_message``."""
    cleaned = " ".join(user_message.split())
    return json.dumps(
        {
            "refined": cleaned[:1].upper() + cleaned[1:].rstrip("?!. ") + "?",
            "suggestions": [f"What is {cleaned}?", f"How does {cleaned} work?"],
            "intent": "question",
            "confidence": 0.8,
        }
    )


class InferenceStandIn(LocalServer):
    """A threaded HTTP server on 127.0.0.1 with a switchable behaviour and a request log."""

    def __init__(self, behaviour: str = "fast", retry_after: str = "60", dim: int = 384) -> None:
        self.behaviour = behaviour
        self.retry_after = retry_after
        self.dim = dim
        self.reply: str | None = None  # fixed chat content; None = default_reply(last user message)
        self.requests: list[dict[str, Any]] = []
        self._lock = threading.Lock()
        super().__init__(self._handler_class())

    @property
    def count(self) -> int:
        with self._lock:
            return len([r for r in self.requests if not r["path"].startswith("/_control")])

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        standin = self

        class Handler(QuietHandler):
            def _send(self, status: int, body: bytes, headers: dict[str, str] | None = None) -> None:
                self.send_bytes(status, body, headers, content_type="application/json")

            def _json(self, status: int, value: Any, headers: dict[str, str] | None = None) -> None:
                self._send(status, json.dumps(value).encode(), headers)

            def do_GET(self) -> None:  # noqa: N802
                if self.path.startswith("/_control"):
                    self._json(200, {"behaviour": standin.behaviour, "count": standin.count})
                else:
                    self._json(404, {"error": "not found"})

            def do_POST(self) -> None:  # noqa: N802
                raw = self.read_body()
                try:
                    body = json.loads(raw or b"{}")
                except ValueError:
                    body = None
                with standin._lock:
                    standin.requests.append(
                        {
                            "method": "POST",
                            "path": self.path,
                            "headers": dict(self.headers.items()),
                            "body": body,
                        }
                    )
                if self.path.startswith("/_control"):
                    if isinstance(body, dict):
                        standin.behaviour = body.get("behaviour", standin.behaviour)
                        standin.retry_after = str(body.get("retry_after", standin.retry_after))
                    self._json(200, {"behaviour": standin.behaviour})
                    return
                behaviour = standin.behaviour
                if behaviour == "slow":
                    time.sleep(0.4)
                elif behaviour == "hanging":
                    time.sleep(5)
                elif behaviour == "rate_limited":
                    self._json(429, {"error": "Rate limit reached"}, {"Retry-After": standin.retry_after})
                    return
                elif behaviour == "unavailable":
                    self._json(503, {"error": "Service Unavailable"})
                    return
                elif behaviour == "credits":
                    self._json(402, {"error": "You have exceeded your monthly included credits"})
                    return
                elif behaviour == "invalid_json":
                    self._send(200, b"<html>not json</html>")
                    return
                elif behaviour == "echo_token":
                    said = f"invalid credentials: {self.headers.get('Authorization', '')}"
                    self._json(401, {"error": said}, {"X-Error-Message": said})
                    return
                elif behaviour == "garbage":
                    self._json(200, {"unexpected": ["shape"]})
                    return
                if self.path.startswith("/v1/chat/completions"):
                    self._chat(body or {})
                elif "/pipeline/feature-extraction" in self.path:
                    self._features(body or {})
                else:
                    self._json(404, {"error": f"no route {self.path}"})

            def _chat(self, body: dict[str, Any]) -> None:
                messages = body.get("messages") or []
                last_user = next(
                    (m.get("content", "") for m in reversed(messages) if m.get("role") == "user"), ""
                )
                content = standin.reply if standin.reply is not None else default_reply(str(last_user))
                self._json(
                    200,
                    {
                        "id": "standin-1",
                        "object": "chat.completion",
                        "created": int(time.time()),
                        "model": body.get("model", "standin"),
                        "choices": [
                            {
                                "index": 0,
                                "finish_reason": "stop",
                                "message": {"role": "assistant", "content": content},
                            }
                        ],
                        "usage": {"prompt_tokens": 10, "completion_tokens": 20, "total_tokens": 30},
                    },
                )

            def _features(self, body: dict[str, Any]) -> None:
                inputs = body.get("inputs")
                path = self.path.split("?", 1)[0]
                model = path.split("/hf-inference/models/", 1)[-1].split("/pipeline/", 1)[0]
                if isinstance(inputs, str):
                    self._json(200, fake_embedding(inputs, standin.dim, model))
                elif isinstance(inputs, list) and all(isinstance(t, str) for t in inputs):
                    self._json(200, [fake_embedding(t, standin.dim, model) for t in inputs])
                else:
                    self._json(400, {"error": "inputs must be a string or a list of strings"})

        return Handler


if __name__ == "__main__":  # manual use: python -m tests.standins.inference
    server = InferenceStandIn().start()
    print(server.url, flush=True)
    threading.Event().wait()
