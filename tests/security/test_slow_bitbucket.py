"""A hanging Bitbucket does not take the site down, under a plain ``gunicorn wsgi:app -w 2``.

The token endpoint is a hostile upstream that holds every request until the test releases
it. More sign-ins come back with fake codes than the workers have threads; those beyond
``BITBUCKET_MAX_CONCURRENT_SIGN_INS`` per process must get a 503 page at once, and a
bystander's sign-in page must still answer while the others hang.
"""

from __future__ import annotations

import runpy
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from urllib.parse import parse_qs, urlsplit

import requests
from requests.cookies import RequestsCookieJar

from bitbucket_signin.config import DEFAULTS
from bitbucket_signin.emulator import EmulatorServer

from ..processes import ROOT, app_environment, gunicorn_app
from ..support import DATA, docs_page, start_sign_in
from .hostile import JSON, held, hostile, http_answer, json_body, whole

WORKERS = 2
SHIPPED = runpy.run_path(str(ROOT / "gunicorn.conf.py"))
LIMIT: int = DEFAULTS["MAX_CONCURRENT_SIGN_INS"]
CALLBACKS = WORKERS * SHIPPED["threads"] + LIMIT  # more than every thread of every worker
PROMPT = 5.0  # seconds: "at once" and "promptly", generous enough for a loaded machine
REFUSED = "Too many sign-ins are waiting for Bitbucket right now"
INVALID_GRANT = http_answer(400, json_body({"error": "invalid_grant"}), JSON)


def test_the_shipped_gunicorn_settings_leave_threads_beyond_the_limit() -> None:
    deadline = 2 * DEFAULTS["TIMEOUT"]  # BITBUCKET_CALLBACK_TIMEOUT's default
    assert SHIPPED["worker_class"] == "gthread"
    assert SHIPPED["threads"] > LIMIT
    assert SHIPPED["timeout"] > deadline
    assert SHIPPED["graceful_timeout"] > deadline
    assert "`gunicorn.conf.py`" in docs_page("deployment").split("## gunicorn", 1)[1]


def fake_callback(app_url: str) -> tuple[str, RequestsCookieJar]:
    """The callback, with a valid state and a fake code, of a browser that pressed "Sign in";
    and that browser's cookies."""
    with requests.Session() as browser:
        state = parse_qs(urlsplit(start_sign_in(browser, app_url)).query)["state"][0]
        callback = f"{app_url}/api/auth/bitbucket/handler/frame?code=fake&state={state}"
        return callback, browser.cookies


def timed_get(
    url: str, cookies: RequestsCookieJar | None = None
) -> tuple[requests.Response, float]:
    """``GET url`` on a new connection, and how long it took."""
    began = time.monotonic()
    response = requests.get(url, cookies=cookies, allow_redirects=False, timeout=120)
    return response, time.monotonic() - began


def until(condition: Callable[[], bool], seconds: float) -> bool:
    """Whether ``condition`` holds within ``seconds`` (polled)."""
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


def test_a_hanging_token_endpoint_leaves_the_site_answering(bitbucket: EmulatorServer) -> None:
    with hostile(held(whole(INVALID_GRANT))) as upstream:
        environment = app_environment(
            bitbucket.url,
            DATA / "catalog.yaml",
            TOKEN_URL=f"{upstream.url}/site/oauth2/access_token",
            TIMEOUT="60",  # the hang outlasts the test: only the limit can answer
            RATE_LIMIT="off",  # every sign-in starts from 127.0.0.1
        )
        with (
            gunicorn_app(environment, WORKERS, as_shipped=True) as app_url,
            ThreadPoolExecutor(CALLBACKS) as pool,
        ):
            callbacks = [fake_callback(app_url) for _ in range(CALLBACKS)]
            calls: list[Future[tuple[requests.Response, float]]] = [
                pool.submit(timed_get, url, cookies) for url, cookies in callbacks
            ]
            try:

                def answered() -> list[tuple[requests.Response, float]]:
                    return [call.result() for call in calls if call.done()]

                # Each callback either waits at the token endpoint or has its answer.
                assert until(lambda: len(answered()) + upstream.answering() == CALLBACKS, 60)
                hanging = upstream.answering()
                bystander, seconds = timed_get(f"{app_url}/signin")
                assert bystander.status_code == 200
                assert seconds < PROMPT
                assert upstream.answering() == hanging  # they still hang
                assert 0 < hanging <= WORKERS * LIMIT
                refused = answered()
                assert len(refused) == CALLBACKS - hanging
                assert {response.status_code for response, _ in refused} == {503}
                assert all(REFUSED in response.text for response, _ in refused)
                assert max(seconds for _, seconds in refused) < PROMPT
            finally:
                upstream.release.set()
            results = [call.result(timeout=60) for call in calls]
    statuses = sorted(response.status_code for response, _ in results)
    assert statuses == [502] * hanging + [503] * (CALLBACKS - hanging)  # never a 500
