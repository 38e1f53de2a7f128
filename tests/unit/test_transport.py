"""transport.py: every call to Bitbucket bounded as a whole, never redirected, its body capped."""

from __future__ import annotations

import time

import pytest
import requests

from bitbucket_signin.transport import BodyTooLargeError, BoundedAdapter, RedirectRefusedError

from .fake_bitbucket import FakeBitbucket


def session(timeout: float = 2.0, max_body_bytes: int = 1000) -> requests.Session:
    bounded = requests.Session()
    bounded.mount("http://", BoundedAdapter(timeout=timeout, max_body_bytes=max_body_bytes))
    return bounded


@pytest.mark.parametrize(("size", "fits"), [(1000, True), (1001, False)])
def test_the_body_is_read_up_to_the_cap(upstream: FakeBitbucket, size: int, fits: bool) -> None:
    upstream.answer("/big", "x" * size)
    with session() as bounded:
        if fits:
            assert len(bounded.get(f"{upstream.url}/big").content) == size
        else:
            with pytest.raises(BodyTooLargeError):
                bounded.get(f"{upstream.url}/big")


@pytest.mark.parametrize("status", [301, 302, 303, 307, 308])
def test_a_redirect_is_refused_not_followed(upstream: FakeBitbucket, status: int) -> None:
    upstream.answer("/moved", "", status, Location=f"{upstream.url}/elsewhere")
    with session() as bounded, pytest.raises(RedirectRefusedError):
        bounded.get(f"{upstream.url}/moved")
    assert upstream.paths() == ["/moved"]


def test_a_callers_longer_timeout_cannot_extend_the_bound(upstream: FakeBitbucket) -> None:
    upstream.hold("/slow")
    began = time.monotonic()
    with session(timeout=0.3) as bounded, pytest.raises(requests.Timeout):
        bounded.get(f"{upstream.url}/slow", timeout=30)
    assert time.monotonic() - began < 10  # the adapter's 0.3 s, far from the caller's 30 s
