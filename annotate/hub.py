"""Uploads to the Hugging Face Hub, shared by ``publish`` (datasets) and ``package`` (models).

Network and credentials are the caller's: the token comes from ``$HF_TOKEN`` at the CLI edge; a repository is
created private unless asked otherwise. Every failure (refused by the Hub, no connection) becomes one
:class:`~annotate.errors.OutputError` line naming the repository; the local folder is never touched.
"""

from __future__ import annotations

import re
from pathlib import Path

from .errors import InputError, OutputError

REPO_PATTERN = re.compile(r"^[A-Za-z0-9][\w.-]*/[A-Za-z0-9][\w.-]*$")


def check_target(repo_id: str, token: str | None) -> None:
    """Refuse a repository id that is not ``ORG/NAME`` or a missing token, before anything is built or sent."""
    if not REPO_PATTERN.match(repo_id):
        raise InputError(f"--push-to-hub {repo_id!r}: give a Hub repository as ORG/NAME")
    if not token:
        raise InputError("--push-to-hub needs a Hugging Face token in $HF_TOKEN")


def upload(
    folder: Path, repo_id: str, *, repo_type: str, allow_patterns: list[str], token: str | None, private: bool = True,
    what: str = "folder",
) -> None:
    """Create ``repo_id`` if missing and upload the files of ``folder`` that match ``allow_patterns``."""
    check_target(repo_id, token)
    from huggingface_hub import HfApi
    from huggingface_hub import errors as hub_errors

    # HfHubHTTPError: the Hub refused; HTTPError (httpx's, huggingface_hub >= 1) or OSError (requests', before):
    # no connection.
    failures = (hub_errors.HfHubHTTPError, OSError, getattr(hub_errors, "HTTPError", OSError))
    api = HfApi(token=token)
    try:
        api.create_repo(repo_id, repo_type=repo_type, private=private, exist_ok=True)
        api.upload_folder(repo_id=repo_id, repo_type=repo_type, folder_path=str(folder), allow_patterns=allow_patterns,
                          commit_message=f"Upload {folder.name}")
    except failures as err:
        first = (str(err).strip().splitlines() or [type(err).__name__])[0]
        raise OutputError(f"push of {folder} to the Hub {repo_type} repo {repo_id!r} failed ({type(err).__name__}: "
                          f"{first}); the local {what} is kept") from err
