"""Shared fixtures. The Doccano fixture starts a real Doccano 1.8.4 once per test session.

It installs Doccano into its own venv when missing (``$ANNOTATE_DOCCANO_VENV`` or ``<repo>/.venv-doccano``;
about a minute, from PyPI), starts it on a free loopback port with a temporary data dir and a random
admin password, and stops it (by pid) at the end. Only tests that ask for it pay for it; they are
marked ``doccano`` and ``slow``.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from annotate import doccano_server
from annotate.doccano_server import Credentials


@dataclass
class LiveDoccano:
    url: str
    admin: Credentials
    data_dir: Path
    venv: Path
    users: dict[str, Credentials] = field(default_factory=dict)

    def user(self, username: str) -> Credentials:
        """A non-admin Doccano user (created once per session, through Django in the data dir)."""
        if username not in self.users:
            creds = Credentials(username, secrets.token_urlsafe(12))
            doccano_server.create_user(self.data_dir, creds, venv=self.venv)
            self.users[username] = creds
        return self.users[username]


@pytest.fixture(scope="session")
def live_doccano(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveDoccano]:
    venv = doccano_server.ensure_installed(doccano_server.default_venv())
    data_dir = tmp_path_factory.mktemp("doccano-data")
    admin = Credentials("admin", secrets.token_urlsafe(12))
    result = doccano_server.start(data_dir, port=doccano_server.free_port(), venv=venv, credentials=admin)
    try:
        yield LiveDoccano(result.info.url, admin, data_dir, venv)
    finally:
        doccano_server.stop(data_dir)
