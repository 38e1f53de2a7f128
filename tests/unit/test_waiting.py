"""waiting.py: the sign-in's deadline and the process's limit on sign-ins waiting on Bitbucket."""

from __future__ import annotations

import pytest

from bitbucket_signin.errors import UpstreamError
from bitbucket_signin.waiting import Deadline, SignInLimit


def test_a_deadline_gives_each_call_the_time_left() -> None:
    deadline = Deadline(30)
    first = deadline.seconds_left("user")
    assert 0 < first <= 30
    assert deadline.seconds_left("emails") <= first


@pytest.mark.parametrize("seconds", [0, -1])
def test_a_passed_deadline_is_a_504_naming_the_call(seconds: float) -> None:
    with pytest.raises(UpstreamError) as refused:
        Deadline(seconds).seconds_left("token exchange")
    assert refused.value.status == 504
    assert refused.value.message == "Bitbucket did not answer in time (token exchange)."


def test_one_sign_in_more_than_the_limit_is_refused_at_once() -> None:
    limit = SignInLimit(2)
    with limit.slot(), limit.slot():
        with pytest.raises(UpstreamError) as refused, limit.slot():
            pass
        assert refused.value.status == 503
        assert "Too many sign-ins" in refused.value.message
    with limit.slot(), limit.slot():  # both slots came back
        pass


def test_a_slot_comes_back_when_the_sign_in_fails() -> None:
    limit = SignInLimit(1)
    with pytest.raises(ValueError, match="boom"), limit.slot():
        raise ValueError("boom")
    with limit.slot():
        pass
