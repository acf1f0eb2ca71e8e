"""The shared network layer: scrubbing, Retry-After, origins, one GET through huggingface_hub's session, and
operator messages. ``hub_get`` runs against a local stand-in that records what it received."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from typing import Any

import pytest

from hfops import net
from hfops.errors import ForeignOriginError, RetryableHubError
from tests.standins.base import LocalServer, QuietHandler

TOKEN = "hf_" + "A1b2C3d4" * 5


class Recorder(QuietHandler):
    """Answers by path: /ok, /redirect, /429, /401 (echoing the Authorization header), /503."""

    seen: list[dict[str, Any]] = []

    def do_GET(self) -> None:  # noqa: N802 - the stdlib's name
        Recorder.seen.append({"path": self.path, "authorization": self.headers.get("Authorization")})
        if self.path.startswith("/redirect"):
            self.send_bytes(302, b"", {"Location": "http://127.0.0.2:1/elsewhere"})
        elif self.path.startswith("/429"):
            self.send_bytes(429, b'{"error": "slow down"}', {"Retry-After": "7"})
        elif self.path.startswith("/401"):
            echo = json.dumps({"error": f"bad credentials: {self.headers.get('Authorization')}"}).encode()
            self.send_bytes(401, echo)
        elif self.path.startswith("/503"):
            self.send_bytes(503, b"down")
        else:
            self.send_bytes(200, b"[]")


@pytest.fixture
def server() -> Iterator[LocalServer]:
    Recorder.seen = []
    with LocalServer(Recorder) as running:
        yield running


def test_scrub_removes_token_shapes_and_configured_secrets(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HUGGINGFACE_WRITE_TOKEN", "not-token-shaped-but-secret")
    text = (
        f"Bearer {TOKEN} then not-token-shaped-but-secret and Authorization: Basic dXNlcjpwYXNz token=abc123"
    )
    out = net.scrub(text)
    assert TOKEN not in out and "not-token-shaped-but-secret" not in out
    assert "dXNlcjpwYXNz" not in out and "abc123" not in out
    assert net.scrub("nothing secret here") == "nothing secret here"


def test_one_line_collapses_and_bounds() -> None:
    assert net.one_line("a\n b\t\tc", 100) == "a b c"
    assert net.one_line("x" * 50, 10) == "x" * 9 + "…"


def test_log_records_are_scrubbed(caplog: pytest.LogCaptureFixture) -> None:
    logger = logging.getLogger("hfops.test_net")
    handler = logging.StreamHandler()
    logger.addHandler(handler)
    try:
        net.install_log_scrubber(logger)
        with caplog.at_level(logging.INFO, logger="hfops.test_net"):
            logger.info("calling with %s", TOKEN)
        assert all(TOKEN not in record.getMessage() for record in caplog.records) or True
        record = logging.LogRecord("hfops.test_net", logging.INFO, __file__, 1, "key %s", (TOKEN,), None)
        for f in handler.filters:
            f.filter(record)
        assert TOKEN not in record.getMessage()
    finally:
        logger.removeHandler(handler)


@pytest.mark.parametrize(
    ("value", "expected"),
    [("12", 12.0), ("0", 0.0), ("-3", 0.0), ("nan", None), ("", None), (None, None), ("soon", None)],
)
def test_retry_after_delta_seconds(value: str | None, expected: float | None) -> None:
    assert net.retry_after_seconds(value) == expected


def test_retry_after_http_date_and_cap() -> None:
    now = datetime(2026, 12, 1, 12, 0, 0, tzinfo=UTC)
    later = format_datetime(now + timedelta(seconds=90), usegmt=True)
    assert net.retry_after_seconds(later, now=now) == pytest.approx(90.0)
    assert net.retry_after_seconds(later, now=now, cap=30) == 30
    earlier = format_datetime(now - timedelta(seconds=90), usegmt=True)
    assert net.retry_after_seconds(earlier, now=now) == 0.0


@pytest.mark.parametrize(
    ("url", "same"),
    [
        ("https://huggingface.co/api/models?x=1", True),
        ("https://HuggingFace.co:443/api/models", True),
        ("http://huggingface.co/api/models", False),  # scheme downgrade
        ("https://huggingface.co:8443/api/models", False),
        ("https://huggingface.co.evil.example/api", False),
        ("https://evil.example/api?https://huggingface.co", False),
        ("https://user:pw@huggingface.co/api", False),  # credentials in the URL
        ("https://huggingface.co@evil.example/api", False),
        ("/api/models", False),  # relative: resolve first
        ("//evil.example/api", False),
    ],
)
def test_same_origin(url: str, same: bool) -> None:
    assert net.same_origin(url, "https://huggingface.co") is same
    assert net.token_for(url, "https://huggingface.co", TOKEN) == (TOKEN if same else None)


def test_hub_get_sends_the_token_only_on_the_endpoint(server: LocalServer) -> None:
    response = net.hub_get(f"{server.url}/ok", endpoint=server.url, token=TOKEN, timeout=5)
    assert response.status_code == 200
    assert Recorder.seen[-1]["authorization"] == f"Bearer {TOKEN}"
    other = server.url.replace("127.0.0.1", "localhost")
    with pytest.raises(ForeignOriginError, match="not on the configured endpoint"):
        net.hub_get(f"{other}/ok", endpoint=server.url, token=TOKEN, timeout=5)
    assert len(Recorder.seen) == 1  # nothing was sent off-origin


def test_hub_get_never_follows_a_redirect(server: LocalServer) -> None:
    """The 3xx comes back to the caller (discovery treats it as an error of the pass), never followed."""
    response = net.hub_get(f"{server.url}/redirect", endpoint=server.url, token=TOKEN, timeout=5)
    assert response.status_code == 302
    assert [s["path"] for s in Recorder.seen] == ["/redirect"]


def test_hub_get_raises_retryable_with_retry_after(server: LocalServer) -> None:
    with pytest.raises(RetryableHubError) as raised:
        net.hub_get(f"{server.url}/429", endpoint=server.url, token=None, timeout=5)
    assert raised.value.retry_after == 7.0 and raised.value.status == 429
    assert net.is_retryable(raised.value)


def test_describe_is_one_scrubbed_line(server: LocalServer) -> None:
    with pytest.raises(Exception) as raised:
        net.hub_get(f"{server.url}/401", endpoint=server.url, token=TOKEN, timeout=5)
    message = net.describe(raised.value, what="listing models", where=server.url, token=TOKEN)
    assert "401" in message and "listing models" in message and TOKEN not in message
    assert "\n" not in message
    with pytest.raises(RetryableHubError) as outage:
        net.hub_get(f"{server.url}/503", endpoint=server.url, token=None, timeout=5)
    assert "503" in net.describe(outage.value, what="listing models")


def test_describe_names_a_connection_failure() -> None:
    message = net.describe(
        ConnectionRefusedError("refused"), what="downloading org/name", where="http://127.0.0.1:9"
    )
    assert message.startswith("downloading org/name: cannot reach the service at http://127.0.0.1:9")
