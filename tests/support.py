"""Helpers shared by the integration tests: the example accounts and a sign-in through HTTP."""

from __future__ import annotations

import importlib.util
import os
import re
import statistics
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import requests
import yaml
from flask import Flask, jsonify
from flask_login import current_user, login_required
from prometheus_client.parser import text_string_to_metric_families
from requests.adapters import HTTPAdapter
from werkzeug.serving import make_server

from bitbucket_signin.emulator import EmulatorServer, generated_account
from bitbucket_signin.errors import TokensNotKeptError
from bitbucket_signin.testing import emulator_settings, grant_at_emulator
from bitbucket_signin.testing import sign_in as sign_in  # the tests' helpers, from the package
from bitbucket_signin.testing import start_sign_in as start_sign_in

DATA = Path(__file__).parent / "data"
CLIENT_ID = "test-client-id"
CLIENT_SECRET = "test-client-secret"
SECRET_KEY = "integration-tests-secret-key-of-enough-bytes"
AUTHORIZE_PATH = "/site/oauth2/authorize"
TOKEN_PATH = "/site/oauth2/access_token"
CATALOG_CHECK_INTERVAL = 0.05  # seconds of the app fixture's clock between looks at the catalog

JANE = "{768f8c62-7f2a-4914-bf33-3f412fc1d3a4}"
LI = "{9c2d4e6f-8a1b-4c3d-9e5f-7a6b5c4d3e2f}"
OMAR = "{1f0e3a57-2c4b-4f1e-8d2a-6a3b9c7d5e21}"
MANI = "{2a3b4c5d-6e7f-4a8b-9c0d-1e2f3a4b5c6d}"
VAL = "{0d9e8f7a-6b5c-4d3e-8f2a-1b0c9d8e7f6a}"
# Jane as Backstage's `identity` gives her (tests/data/catalog.yaml: jdoe, memberOf platform,
# one of the members of payments).
JANE_IDENTITY = {
    "type": "user",
    "userEntityRef": "user:default/jdoe",
    "ownershipEntityRefs": [
        "group:default/payments",
        "group:default/platform",
        "user:default/jdoe",
    ],
}
_YAML_DUMPER: Any = getattr(yaml, "CSafeDumper", yaml.SafeDumper)
Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def signin_config(bitbucket_url: str, catalog: Path) -> dict[str, str]:
    """What an app needs to sign people of ``catalog`` in with the Bitbucket (the emulator, or
    a stand-in) at ``bitbucket_url``: the secret key, the consumer, the catalog, the URLs."""
    return {
        "SECRET_KEY": SECRET_KEY,
        "BITBUCKET_CLIENT_ID": CLIENT_ID,
        "BITBUCKET_CLIENT_SECRET": CLIENT_SECRET,
        "BITBUCKET_CATALOG": str(catalog),
        **emulator_settings(bitbucket_url),
    }


class FakeClock:
    """A clock the test moves (``BITBUCKET_CLOCK``, ``CatalogStore(clock=…)``): seconds."""

    def __init__(self, now: float = 1000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@contextmanager
def serve(app: object) -> Iterator[str]:
    """Serve a WSGI app on a free loopback port in a thread; yields its base URL."""
    server = make_server("127.0.0.1", 0, app, threaded=True)  # type: ignore[arg-type]
    thread = threading.Thread(
        target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
    )
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        thread.join(timeout=5)


class _SourceAddressAdapter(HTTPAdapter):
    """Connections from one local address (all of 127.0.0.0/8 reaches 127.0.0.1 on Linux)."""

    def __init__(self, address: str) -> None:
        self.address = address
        super().__init__()

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        super().init_poolmanager(*args, source_address=(self.address, 0), **kwargs)


@contextmanager
def client_at(address: str) -> Iterator[requests.Session]:
    """A cookie jar whose connections come from ``address`` (e.g. ``127.0.0.2``): another
    client as the server's TCP peer address sees it."""
    with requests.Session() as http:
        http.mount("http://", _SourceAddressAdapter(address))
        yield http


def signed_in_browser(app_url: str, bitbucket: EmulatorServer, account: str) -> requests.Session:
    """A new cookie jar, signed in as ``account``."""
    browser = requests.Session()
    assert sign_in(browser, app_url, bitbucket.url, account).status_code == 302
    return browser


def is_signed_in(browser: requests.Session, app_url: str) -> bool:
    """Whether the home page serves ``browser`` (rather than sending it to sign in)."""
    answer = browser.get(f"{app_url}/", allow_redirects=False, timeout=10)
    assert answer.status_code in (200, 302), answer.status_code
    return answer.status_code == 200


def add_bitbucket_pages(app: Flask) -> None:
    """Pages of a host app that call Bitbucket as the signed-in person."""

    @app.get("/bitbucket/me")
    @login_required  # type: ignore[untyped-decorator]
    def me() -> Any:
        answer = current_user.bitbucket.get("user")
        return jsonify(status=answer.status_code, user=answer.json())

    @app.get("/bitbucket/emails")
    @login_required  # type: ignore[untyped-decorator]
    def emails() -> Any:
        client = current_user.bitbucket
        page = client.get("/user/emails").json()
        addresses = [value["email"] for value in page["values"]]
        while "next" in page:  # absolute links on the API's origin
            page = client.get(page["next"]).json()
            addresses += [value["email"] for value in page["values"]]
        return jsonify(addresses)

    @app.get("/bitbucket/elsewhere")
    @login_required  # type: ignore[untyped-decorator]
    def elsewhere() -> Any:
        try:
            current_user.bitbucket.get("http://127.0.0.2:9/2.0/user")
        except ValueError as error:
            return str(error)
        return "sent"

    @app.get("/bitbucket/not-kept")
    @login_required  # type: ignore[untyped-decorator]
    def not_kept() -> Any:
        try:
            current_user.bitbucket.get("user")
        except TokensNotKeptError as error:
            return str(error)
        return "called"


def finish_sign_in(
    app_url: str,
    emulator_url: str,
    start: requests.Response,
    account: str,
    headers: dict[str, str] | None = None,
) -> requests.Response:
    """Grant at the emulator and come back to the app at ``app_url`` (whatever host the
    redirect_uri names) with the cookie ``start`` set, by hand: Secure or not."""
    callback = urlsplit(grant_at_emulator(emulator_url, start.headers["Location"], account))
    return requests.get(
        f"{app_url}{callback.path}?{callback.query}",
        headers=headers,
        cookies={"session": start.cookies["session"]},
        allow_redirects=False,
        timeout=30,
    )


def emulator_requests(bitbucket: EmulatorServer) -> list[dict[str, Any]]:
    """The emulator's request log (OAuth and API calls, never secret values), oldest first."""
    response = requests.get(f"{bitbucket.url}/_emulator/requests", timeout=5)
    response.raise_for_status()
    entries: list[dict[str, Any]] = response.json()["requests"]
    return entries


def token_requests(bitbucket: EmulatorServer) -> list[dict[str, Any]]:
    """The logged calls of the token endpoint (``grant_type``, ``redirect_uri``, …)."""
    return [entry for entry in emulator_requests(bitbucket) if entry["endpoint"] == "token"]


def token_calls(bitbucket: EmulatorServer) -> int:
    return len(token_requests(bitbucket))


def reset_emulator(emulator_url: str) -> None:
    """Forget every fault, code, token, rate count and logged request of the emulator."""
    requests.post(f"{emulator_url}/_emulator/reset", timeout=5).raise_for_status()


def set_fault(emulator_url: str, endpoint: str, **fault: Any) -> None:
    """Make one endpoint of the emulator at ``emulator_url`` fail until :func:`clear_faults`
    (or its ``times`` run out)."""
    response = requests.put(f"{emulator_url}/_emulator/faults/{endpoint}", json=fault, timeout=5)
    response.raise_for_status()


def clear_faults(emulator_url: str) -> None:
    """Remove every fault; requests the emulator holds back (``hang``) answer at once."""
    requests.delete(f"{emulator_url}/_emulator/faults", timeout=5).raise_for_status()


def home_page(http: requests.Session, live_app: str) -> requests.Response:
    return http.get(f"{live_app}/", allow_redirects=False, timeout=10)


def csrf_token(page: str) -> str:
    """The logout form's CSRF token on a signed-in page."""
    return page.split('name="csrf_token" value="', 1)[1].split('"', 1)[0]


def edit_catalog(
    path: Path, text: str, clock: FakeClock, *, check_interval: float = CATALOG_CHECK_INTERVAL
) -> None:
    """Rewrite a catalog file (see :func:`replace_file`) and move the clock of whatever watches
    it past its ``check_interval``: the next look at the catalog sees the edit, no sleep."""
    replace_file(path, text)
    clock.advance(check_interval + 1)


def remove_from_catalog(path: Path, name: str, clock: FakeClock) -> None:
    """Rewrite a catalog of YAML documents without the entity ``name`` (see
    :func:`edit_catalog`)."""
    documents = path.read_text().split("\n---\n")
    kept = "\n---\n".join(d for d in documents if f"name: {name}\n" not in d)
    edit_catalog(path, kept, clock)


def session_contents(app: Flask, cookie: str | None) -> dict[str, Any]:
    """What a signed session cookie holds (Flask signs it; anyone holding it can read it)."""
    if not cookie:
        return {}
    serializer = app.session_interface.get_signing_serializer(app)  # type: ignore[attr-defined]
    data: dict[str, Any] = serializer.loads(cookie)
    return data


def signed_session(app: Flask, data: dict[str, Any]) -> str:
    """A session cookie holding ``data``, signed with the app's key (an insider's forgery)."""
    serializer = app.session_interface.get_signing_serializer(app)  # type: ignore[attr-defined]
    cookie: str = serializer.dumps(data)
    return cookie


def generated_display_name(i: int) -> str:
    """The catalog's name for generated account ``i``; Bitbucket calls it ``User 0001``."""
    return f"Person {i:04d}"


def generated_user(i: int, group: str) -> dict[str, Any]:
    """The catalog User of the emulator's generated account ``i``, matched by its uuid."""
    account = generated_account(i)
    return {
        "apiVersion": "backstage.io/v1alpha1",
        "kind": "User",
        "metadata": {
            "name": account["username"],
            "annotations": {"bitbucket.org/user-id": account["uuid"]},
        },
        "spec": {
            "profile": {
                "displayName": generated_display_name(i),
                "email": account["emails"][0]["email"],
            },
            "memberOf": [group],
        },
    }


def write_generated_catalog(
    folder: Path, count: int, group_of: Callable[[int], str], *, per_file: int = 10_000
) -> Path:
    """A catalog of the generated accounts 1…count, user ``i`` in group ``group_of(i)``.

    The users go into files of ``per_file`` named by Locations in ``catalog.yaml``, next to
    the Groups. Each file is replaced whole (see
    :func:`replace_file`), so rewriting a catalog an app is reading is safe. Returns the
    path of ``catalog.yaml``.
    """
    groups = sorted({group_of(i) for i in range(1, count + 1)})
    chunks = [
        range(start, min(start + per_file, count + 1)) for start in range(1, count + 1, per_file)
    ]
    targets = [f"users-{number:03d}.yaml" for number in range(1, len(chunks) + 1)]
    for target, chunk in zip(targets, chunks, strict=True):
        users = [generated_user(i, group_of(i)) for i in chunk]
        replace_file(folder / target, yaml.dump_all(users, Dumper=_YAML_DUMPER, sort_keys=False))
    entities: list[dict[str, Any]] = [
        {
            "apiVersion": "backstage.io/v1alpha1",
            "kind": "Group",
            "metadata": {"name": group},
            "spec": {"type": "team", "children": []},
        }
        for group in groups
    ]
    entities.append(
        {
            "apiVersion": "backstage.io/v1alpha1",
            "kind": "Location",
            "metadata": {"name": "generated-users"},
            "spec": {"targets": targets},
        }
    )
    root = folder / "catalog.yaml"
    replace_file(root, yaml.dump_all(entities, Dumper=_YAML_DUMPER, sort_keys=False))
    return root


def replace_file(path: Path, text: str) -> None:
    """Write ``path`` by renaming a new file over it, with a later mtime: readers see all of
    the old text or all of the new, and a change shows even on coarse clocks."""
    before = path.stat().st_mtime_ns if path.exists() else 0
    mtime = max(time.time_ns(), before + 10**9)
    temporary = path.with_name(f".{path.name}.new")
    temporary.write_text(text, encoding="utf-8")
    os.utime(temporary, ns=(mtime, mtime))
    os.replace(temporary, path)


def deny_at_emulator(authorize_url: str) -> requests.Response:
    """Press Deny on the emulator's authorize page; its answer (a redirect to the callback)."""
    fields = dict(parse_qsl(urlsplit(authorize_url).query))
    return requests.post(
        authorize_url.split("?", 1)[0],
        data={**fields, "action": "deny"},
        allow_redirects=False,
        timeout=5,
    )


DOCS = Path(__file__).parent.parent / "docs"


def docs_page(name: str) -> str:
    """A page of the docs site (``docs/NAME.md``), for tests that check it says what they
    prove; the settings table in it as the site shows it."""
    text = (DOCS / f"{name}.md").read_text(encoding="utf-8")
    return text.replace(_settings_table.MARKER, _settings_table.settings_table())


def _load_settings_table() -> Any:
    """The docs' hook that makes the settings table (it is no module of the package)."""
    spec = importlib.util.spec_from_file_location(
        "settings_table", DOCS / "hooks/settings_table.py"
    )
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


_settings_table = _load_settings_table()


def block_after(page: str, heading: str, language: str) -> str:
    """The first ``language`` code block after ``heading`` on a page of the docs."""
    text = docs_page(page).split(heading, 1)[1]
    match = re.search(rf"```{language}\n(.*?)```", text, re.DOTALL)
    assert match is not None
    return match.group(1)


def percentiles(seconds: list[float]) -> str:
    """``p50 12.3 ms, p95 45.6 ms`` of some durations."""
    cuts = statistics.quantiles(seconds, n=20, method="inclusive")
    return f"p50 {statistics.median(seconds) * 1000:.1f} ms, p95 {cuts[18] * 1000:.1f} ms"


def samples(text: str) -> Samples:
    """Every sample of a Prometheus exposition text, by name and sorted labels."""
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def call_counts(values: Samples) -> Counter[str]:
    """How many calls to Bitbucket the metrics counted, by the ``call`` label's value."""
    return Counter(
        {
            dict(labels)["call"]: value
            for (name, labels), value in values.items()
            if name == "bitbucket_signin_bitbucket_call_seconds_count"
        }
    )
