"""Pushing a publication to the Hub: repo ids, the write token, one commit, Hub errors as operator messages.

``HUGGINGFACE_WRITE_TOKEN`` is read here and nowhere else (:func:`write_token_in_use`, and
:func:`token_status` for pages, which may only say ``set`` or ``not set``); it is never stored, logged,
printed or put in an error message (every message goes through :func:`hfops.net.scrub`).
"""

from __future__ import annotations

from typing import Any

from hfops import net
from hfops.config import secret_status, write_token
from hfops.errors import PublishError
from hfops.publish.report import PublishFile


def write_token_in_use() -> str | None:
    """The write token, or None when ``HUGGINGFACE_WRITE_TOKEN`` is not set."""
    return write_token()


def token_status() -> str:
    """What a page may show about the write token: ``set`` or ``not set``."""
    return secret_status(write_token())


def check_repo_id(repo_id: str) -> str:
    """``ORG/NAME`` as the Hub accepts it, or a :class:`PublishError`."""
    from huggingface_hub.utils import HFValidationError, validate_repo_id

    repo_id = repo_id.strip()
    try:
        validate_repo_id(repo_id)
    except HFValidationError as exc:
        raise PublishError(f"invalid repo id {repo_id!r}: {exc}") from None
    if repo_id.count("/") != 1:
        raise PublishError(f"invalid repo id {repo_id!r}: expected ORG/NAME")
    return repo_id


def describe_hub_error(exc: BaseException, repo_id: str, endpoint: str, step: str, token: str | None) -> str:
    """A clear operator message for a failed write to the Hub (status first, the token scrubbed).

    The statuses a write meets (401 bad token, 403 no write access, 409 conflict, 5xx outage) get advice
    about writing; anything else is :func:`hfops.net.describe`'s message.
    """
    status = net.status_of(exc)
    namespace = repo_id.split("/")[0]
    if status == 401:
        text = (
            f"the Hub at {endpoint} rejected HUGGINGFACE_WRITE_TOKEN (401 Unauthorized) while {step}: "
            "the token is invalid, expired or revoked; create a write token at "
            "https://huggingface.co/settings/tokens"
        )
    elif status == 403:
        text = (
            f"HUGGINGFACE_WRITE_TOKEN may not write to {repo_id} (403 Forbidden) while {step}: use a token "
            f"with write access to the {namespace!r} namespace (a fine-grained token needs write permission "
            "on that repo or organisation)"
        )
    elif status == 409:
        text = (
            f"conflict on {repo_id} (409 Conflict) while {step}: the repo changed or another operation was "
            "in "
            "progress; nothing was committed, run publish again"
        )
    elif status is not None and status >= 500:
        text = (
            f"the Hub at {endpoint} failed (HTTP {status}) while {step}; nothing was committed, "
            "try again later"
        )
    elif isinstance(exc, ValueError) and status is None:
        text = f"the Hub client refused the request while {step}: {exc}"
    else:
        return net.describe(exc, what=step, where=f"the Hub at {endpoint}", token=token)
    said = net.server_message(exc)
    if said:
        text += f" [Hub: {said}]"
    return net.one_line(net.scrub(text, token), 600)


def push_files(
    endpoint: str, token: str, repo_id: str, files: list[PublishFile], message: str, description: str
) -> tuple[str, str]:
    """Create the private repo if needed and push ``files`` in one commit; returns ``(commit_url, oid)``."""
    import httpx2
    from huggingface_hub import CommitOperationAdd, HfApi
    from huggingface_hub.errors import HfHubHTTPError

    from hfops import __version__

    api = HfApi(endpoint=endpoint, token=token, library_name="hfops", library_version=__version__)
    step = f"creating the private repo {repo_id}"
    try:
        api.create_repo(repo_id, private=True, exist_ok=True, repo_type="model")
        step = f"committing {len(files)} files to {repo_id}"
        info: Any = api.create_commit(
            repo_id,
            [CommitOperationAdd(path_in_repo=f.path, path_or_fileobj=f.content) for f in files],
            commit_message=message,
            commit_description=description,
            repo_type="model",
        )
    except (HfHubHTTPError, httpx2.HTTPError, ValueError, OSError) as exc:
        raise PublishError(describe_hub_error(exc, repo_id, endpoint, step, token)) from None
    return str(info.commit_url), str(info.oid)
