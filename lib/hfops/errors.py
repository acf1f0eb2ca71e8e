"""Every error hfops raises on purpose: one tree under :class:`HfopsError`, on consistent builtin bases.

An :class:`HfopsError` is an expected failure whose message is meant for the operator: the CLI prints it as
``error: …`` (exit 2) and the console shows it in an error box, never as a traceback. Messages never hold a
secret (build them from :func:`hfops.net.scrub`-ed text). The builtin bases say what kind of failure it is:
``ValueError`` for bad input, ``RuntimeError`` for an operation that could not be done, ``ConnectionError``
for a remote service that did not answer usefully (so generic handlers still classify them sensibly).
"""

from __future__ import annotations


class HfopsError(Exception):
    """An expected failure with a message meant for the operator."""


# --- bad input (ValueError) -------------------------------------------------------------------------------


class ConfigError(HfopsError, ValueError):
    """A configuration file or value is invalid; the message names the file and key."""


class RegistryError(HfopsError, ValueError):
    """An invalid registry operation (unknown model, status or transition; missing reason)."""


class DatasetError(HfopsError, ValueError):
    """A dataset file is missing or malformed, or a Hub dataset could not be loaded (names the file)."""


class ScoreError(HfopsError, ValueError):
    """Inputs to a metric are malformed or do not match (names the file, line or id)."""


class EvalError(HfopsError, ValueError):
    """An evaluation request is invalid or a run cannot continue (message for the operator)."""


class RefineInputError(HfopsError, ValueError):
    """The query is not acceptable (not a string, empty, or too long); the message says which."""


class InvalidOutput(HfopsError, ValueError):
    """A model's reply is not in the shape asked for (e.g. not the JSON object the refiner requested)."""


# --- operations that could not be done (RuntimeError) ----------------------------------------------------


class StoreError(HfopsError, RuntimeError):
    """The store cannot be opened, read or written (names the path and the cause)."""


class JobError(HfopsError, RuntimeError):
    """A job could not be created or run (unknown kind, duplicate kind, bad parameters)."""


class BackendError(HfopsError, RuntimeError):
    """A model is unavailable or an inference call failed (message safe to show; never holds a secret)."""


class PublishError(HfopsError, RuntimeError):
    """Publishing failed or was refused; the message says why (and never contains the token)."""


class SyncError(HfopsError, RuntimeError):
    """A sync gave up.

    Causes: deadline in back-off, refused listing, foreign or cyclic pagination, unreadable snapshot.
    """


class SpaceBundleError(HfopsError, RuntimeError):
    """The Space bundle cannot be built or does not validate (the message says what is wrong)."""


class DemoError(HfopsError, RuntimeError):
    """A demo feature could not answer (message for the visitor)."""


# --- remote services (ConnectionError) --------------------------------------------------------------------


class RemoteError(HfopsError, ConnectionError):
    """A remote service (the Hub, the Inference API) did not answer usefully; ``status`` when it answered."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


class RetryableHubError(RemoteError):
    """A request that may succeed later (408/429/5xx, timeout, connection error).

    ``retry_after`` is in seconds.
    """

    def __init__(self, message: str, retry_after: float | None = None, status: int | None = None) -> None:
        super().__init__(message, status)
        self.retry_after = retry_after


class ForeignOriginError(RemoteError):
    """A URL (pagination link, redirect) points outside the configured endpoint's origin.

    It is not followed.
    """


# --- model acquisition (hfops.models) ---------------------------------------------------------------------


class ModelError(HfopsError, RuntimeError):
    """A model cannot be acquired, located or loaded (unknown id, unreadable files, failed download)."""


class ModelRefusedError(ModelError):
    """A model is refused before any byte moves or before loading; ``reason`` names why.

    Reasons: ``pickle_only``, ``too_large``, ``no_disk``, ``no_memory``, ``gated``, ``unsupported``
    (a quantization or format that cannot run here), ``not_allowed`` (downloads disabled by policy).
    """

    def __init__(self, message: str, reason: str) -> None:
        super().__init__(message)
        self.reason = reason
