"""Profile selection from Bitbucket's answers."""

from __future__ import annotations

import pytest

from bitbucket_signin.profile import (
    BitbucketProfile,
    Workspace,
    braced_uuid,
    for_session,
    normalize_uuid,
    profile_from_api,
    select_email,
    workspace_refusal,
)

USER = {
    "type": "user",
    "uuid": "{768F8C62-7f2a-4914-bf33-3f412fc1d3a4}",
    "account_id": "5c65cab48bcc9e016aeece31",
    "nickname": "Jane D",
    "display_name": "Jane Doe",
    "links": {"avatar": {"href": "https://avatars.test/jane.png"}},
}


@pytest.mark.parametrize(
    ("addresses", "expected"),
    [
        ([{"email": "a@x.test", "is_primary": True, "is_confirmed": True}], "a@x.test"),
        (
            [
                {"email": "old@x.test", "is_primary": True, "is_confirmed": False},
                {"email": "b@x.test", "is_primary": False, "is_confirmed": True},
                {"email": "c@x.test", "is_primary": False, "is_confirmed": True},
            ],
            "b@x.test",
        ),
        (
            [
                {"email": "b@x.test", "is_primary": False, "is_confirmed": True},
                {"email": "p@x.test", "is_primary": True, "is_confirmed": True},
            ],
            "p@x.test",
        ),
        ([{"email": "u@x.test", "is_primary": True, "is_confirmed": False}], None),
        ([{"email": "s@x.test", "is_primary": True, "is_confirmed": "true"}], None),
        ([], None),
    ],
)
def test_select_email(addresses: list[dict[str, object]], expected: str | None) -> None:
    assert select_email(addresses) == expected


def test_profile_from_api_takes_avatar_and_normalises_uuid() -> None:
    workspaces = [{"administrator": True, "workspace": {"slug": "acme", "uuid": "{w}"}}]
    profile = profile_from_api(USER, [], workspaces)
    assert profile.uuid == "{768f8c62-7f2a-4914-bf33-3f412fc1d3a4}"
    assert profile.avatar_url == "https://avatars.test/jane.png"
    assert profile.username is None
    assert profile.workspaces == (Workspace(slug="acme", uuid="{w}", administrator=True),)


def test_profile_from_api_unknown_workspaces_stay_unknown() -> None:
    assert profile_from_api(USER, [], None).workspaces is None


@pytest.mark.parametrize("user", [{}, {"uuid": ""}, {"uuid": 5}, {"uuid": "{}"}])
def test_profile_without_uuid_is_refused(user: dict[str, object]) -> None:
    with pytest.raises(ValueError, match="uuid"):
        profile_from_api(user, [], None)


def test_profile_round_trips_through_a_dict() -> None:
    profile = profile_from_api(USER, [], [{"workspace": {"slug": "acme", "uuid": "{w}"}}])
    assert BitbucketProfile.from_dict(profile.to_dict()) == profile


def test_uuid_forms() -> None:
    assert normalize_uuid(" {ABC-1} ") == "abc-1"
    assert braced_uuid("ABC-1") == "{abc-1}"


def test_workspace_restriction() -> None:
    member = profile_from_api(USER, [], [{"workspace": {"slug": "Acme", "uuid": "{w}"}}])
    outsider = profile_from_api(USER, [], [])
    unknown = profile_from_api(USER, [], None)
    allowed = frozenset({"acme"})
    assert workspace_refusal(member, allowed) is None
    assert "only for members" in str(workspace_refusal(outsider, allowed))
    assert "did not say" in str(workspace_refusal(unknown, allowed))
    assert workspace_refusal(unknown, frozenset()) is None


def test_a_look_alike_slug_is_another_workspace() -> None:
    kelvin = profile_from_api(USER, [], [{"workspace": {"slug": "\u212aube", "uuid": "{w}"}}])
    assert "only for members" in str(workspace_refusal(kelvin, frozenset({"kube"})))
    assert for_session(kelvin, frozenset({"kube"})).workspaces == ()


def test_session_copy_keeps_only_workspaces_that_matter() -> None:
    profile = profile_from_api(
        USER,
        [],
        [
            {"workspace": {"slug": "acme", "uuid": "{a}"}},
            {"workspace": {"slug": "b", "uuid": "{b}"}},
        ],
    )
    assert for_session(profile, frozenset()).workspaces is None
    kept = for_session(profile, frozenset({"acme"}))
    assert kept.workspaces == (Workspace(slug="acme"),)
    assert kept.to_dict()["workspaces"] == ({"slug": "acme"},)
    assert BitbucketProfile.from_dict(kept.to_dict()) == kept
