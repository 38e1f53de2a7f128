"""Fixtures for the security tests: captured logs at DEBUG, recorded traffic, issued tokens."""

from __future__ import annotations

import base64
import logging

import pytest
import requests

from bitbucket_signin.emulator import EmulatorServer

from ..support import CLIENT_ID, CLIENT_SECRET

LOGGERS = ("werkzeug", "urllib3", "authlib", "requests", "bitbucket_signin")


@pytest.fixture
def logs(caplog: pytest.LogCaptureFixture) -> pytest.LogCaptureFixture:
    """Every log record from every logger at DEBUG (werkzeug, urllib3, authlib, ours, root)."""
    caplog.set_level(logging.DEBUG)
    for name in LOGGERS:
        caplog.set_level(logging.DEBUG, logger=name)
    return caplog


@pytest.fixture
def traffic(http: requests.Session) -> list[str]:
    """Everything the browser (``http``) saw: URLs, headers and bodies of every response."""
    seen: list[str] = []

    def record(response: requests.Response, *args: object, **kwargs: object) -> None:
        seen.append(response.url)
        seen.extend(f"{name}: {value}" for name, value in response.headers.items())
        seen.append(response.text)

    http.hooks["response"].append(record)
    return seen


def issued_tokens(bitbucket: EmulatorServer) -> list[str]:
    """Every access and refresh token the emulator issued since its last reset."""
    state = bitbucket.state
    with state.lock:
        return [*state.access_tokens, *state.refresh_tokens]


def leaked(texts: list[str], secrets: list[str]) -> list[str]:
    """The secrets that occur in any of ``texts``."""
    return [secret for secret in secrets if any(secret in text for text in texts)]


def log_texts(logs: pytest.LogCaptureFixture) -> list[str]:
    """Each captured record as formatted (message, arguments and any traceback)."""
    assert any(record.levelno == logging.DEBUG for record in logs.records), "DEBUG not captured"
    return [logs.text, *(record.getMessage() for record in logs.records)]


def secret_values(bitbucket: EmulatorServer) -> list[str]:
    """The client secret (as is and in its Basic header form) and every issued token."""
    basic = base64.b64encode(f"{CLIENT_ID}:{CLIENT_SECRET}".encode()).decode()
    return [CLIENT_SECRET, basic, *issued_tokens(bitbucket)]
