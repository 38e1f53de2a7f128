"""``flask bitbucket-signin …``: admin commands for the catalog and the resolvers.

``check``, ``user-entity`` and ``user-entity-server`` need no app: ``python -m
bitbucket_signin check FILE`` runs them without one, and ``flask bitbucket-signin check``
still reports every problem of a catalog that stops the app from starting.
"""

from __future__ import annotations

import logging
from pathlib import Path

import click
import yaml
from flask import Flask, current_app
from flask.cli import ScriptInfo, with_appcontext

from .app_extension import EXTENSION_NAME, AppExtension, get_extension
from .catalog import USER_ID_ANNOTATION, is_valid_name
from .catalog.check import check_catalog
from .catalog.loader import DEFAULT_MAX_BYTES
from .catalog.store import BITBUCKET_RULES, LOGGER_NAME
from .config import CLOUD_HOST, instance_host
from .errors import CatalogConfigError, ConfigError
from .identity_keys import email_key
from .profile import BitbucketProfile, Profile, braced_uuid
from .providers import CLOUD, DATA_CENTER
from .resolvers import explain
from .server_profile import ServerProfile
from .server_resolvers import user_id_annotation, user_slug_annotation

API_VERSION = "backstage.io/v1alpha1"


@click.group("bitbucket-signin")
def cli() -> None:
    """Bitbucket sign-in: check the catalog, explain the resolvers, write User entities."""


@cli.command("check")
@click.argument("file", required=False, type=click.Path(dir_okay=False, path_type=Path))
@click.pass_context
def check(context: click.Context, file: Path | None) -> None:
    """Check the catalog FILE (default: the app's) and report every problem, one line each,
    naming the file and the entity; exit 1 when there are errors."""
    path, max_bytes = (file, DEFAULT_MAX_BYTES) if file is not None else _app_catalog(context)
    report = check_catalog(path, max_bytes=max_bytes)
    for error in report.errors:
        click.echo(f"error: {error}")
    for warning in report.warnings:
        click.echo(f"warning: {warning}")
    click.echo(
        f"{report.users} users, {report.groups} groups in {report.files} file(s): "
        f"{len(report.errors)} errors, {len(report.warnings)} warnings"
    )
    context.exit(1 if report.errors else 0)


def _app_catalog(context: click.Context) -> tuple[Path, int]:
    """The app's catalog file and size limit; a catalog the app refuses is checked all the same."""
    info = context.find_object(ScriptInfo)
    if info is None:
        raise click.UsageError("give the catalog FILE")
    catalog_logger = logging.getLogger(LOGGER_NAME)
    level = catalog_logger.level
    catalog_logger.setLevel(logging.ERROR)  # the check reports the warnings itself, once
    try:
        app: Flask = info.load_app()
    except CatalogConfigError as error:
        return error.path, DEFAULT_MAX_BYTES
    except ConfigError as error:
        raise click.ClickException(str(error)) from None
    except SystemExit as error:  # wsgi.py turns a ConfigError into its one line and exits
        if isinstance(error.__context__, CatalogConfigError):
            return error.__context__.path, DEFAULT_MAX_BYTES
        raise
    finally:
        catalog_logger.setLevel(level)
    settings = _extension(app).settings
    return settings.catalog_path, settings.catalog_max_bytes


def _extension(app: Flask) -> AppExtension:
    """The app's extension; a plain error for an app that does not use it."""
    if EXTENSION_NAME not in app.extensions:
        raise click.ClickException(f"the app {app.name!r} does not use BitbucketSignIn")
    return get_extension(app)


@cli.command("resolve")
@click.option("--uuid", help="The Bitbucket account's uuid, braces optional.")
@click.option("--account-id", help="The Atlassian account id.")
@click.option("--username", help="The Bitbucket username.")
@click.option("--email", help="The confirmed email address.")
@with_appcontext
def resolve_command(
    uuid: str | None, account_id: str | None, username: str | None, email: str | None
) -> None:
    """Explain each configured resolver's step for a Bitbucket account: what it looked for,
    what it found, and whom it signs in as, or why nobody matched and what would fix it."""
    if not (uuid or account_id or username or email):
        raise click.UsageError("give at least one of --uuid, --account-id, --username, --email")
    profile = BitbucketProfile(
        uuid=braced_uuid(uuid) if uuid else "",
        account_id=account_id,
        display_name="",
        username=username,
        email=email,
    )
    _explain(CLOUD, profile)


@cli.command("resolve-server")
@click.option("--id", "user_id", type=int, required=True, help="The Data Center user id.")
@click.option("--name", required=True, help="The login name (what whoami says).")
@click.option("--slug", required=True, help="The user slug (jane@example.com: jane_example.com).")
@click.option("--email", help="The account's email address.")
@with_appcontext
def resolve_server_command(user_id: int, name: str, slug: str, email: str | None) -> None:
    """Explain each Bitbucket Data Center resolver's step for an account, as ``resolve``."""
    _explain(
        DATA_CENTER, ServerProfile(id=user_id, name=name, slug=slug, display_name="", email=email)
    )


def _explain(provider: str, profile: Profile) -> None:
    """Each resolver's step of ``provider`` for ``profile``, and whom it signs in as (or why
    nobody matched and what would fix it: exit 1)."""
    extension = _extension(current_app)
    chain = extension.providers.get(provider)
    if chain is None:
        raise click.ClickException(f"the app does not sign in with {provider}")
    explanation = explain(chain.resolvers, profile, extension.catalog_store.current())
    for number, step in enumerate(explanation.steps, start=1):
        click.echo(f"{number}. {step.resolver}")
        click.echo(f"   looked for: {step.looked_for}")
        click.echo(f"   found: {step.found}")
    identity = explanation.steps[-1].identity if explanation.steps else None
    if identity is not None:
        click.echo(f"signs in as {identity.user_entity_ref}")
        click.echo(f"ownership refs: {', '.join(identity.ownership_entity_refs)}")
        return
    if explanation.suggestion is not None:
        click.echo("Nobody matched. Add this to the person's User entity:")
        click.echo(explanation.suggestion)
    raise click.exceptions.Exit(1)


@cli.command("user-entity")
@click.option("--uuid", required=True, help="The Bitbucket account's uuid, braces optional.")
@click.option("--name", required=True, help="The entity's metadata.name, e.g. jdoe.")
@click.option("--email", help="spec.profile.email.")
@click.option("--display-name", help="spec.profile.displayName (default: the name).")
def user_entity(uuid: str, name: str, email: str | None, display_name: str | None) -> None:
    """Print a User entity in YAML that the Bitbucket account signs in as."""
    problem = BITBUCKET_RULES.problem(USER_ID_ANNOTATION, uuid)
    if problem is not None:
        raise click.BadParameter(f"{uuid!r} {problem}", param_hint="--uuid")
    _echo_user(name, {USER_ID_ANNOTATION: braced_uuid(uuid)}, email, display_name)


@cli.command("user-entity-server")
@click.option(
    "--server-url",
    required=True,
    help="The instance's BITBUCKET_SERVER_URL; its host names the annotations.",
)
@click.option("--id", "user_id", type=click.IntRange(min=0), required=True, help="The user id.")
@click.option("--slug", required=True, help="The user slug (jane@example.com: jane_example.com).")
@click.option("--name", required=True, help="The entity's metadata.name, e.g. jdoe.")
@click.option("--email", help="spec.profile.email.")
@click.option("--display-name", help="spec.profile.displayName (default: the name).")
def user_entity_server(
    server_url: str,
    user_id: int,
    slug: str,
    name: str,
    email: str | None,
    display_name: str | None,
) -> None:
    """Print a User entity in YAML that the Bitbucket Data Center account signs in as: its id
    and slug in the annotations ``<host>/user-id`` and ``<host>/user-slug``."""
    host = instance_host(server_url)
    if not host or host == CLOUD_HOST:
        raise click.BadParameter(
            f"{server_url!r} is not the URL of a Data Center instance", param_hint="--server-url"
        )
    if not slug or not slug.isprintable() or any(character.isspace() for character in slug):
        raise click.BadParameter(f"{slug!r} is not a user slug", param_hint="--slug")
    annotations = {user_id_annotation(host): str(user_id), user_slug_annotation(host): slug}
    _echo_user(name, annotations, email, display_name)


def _echo_user(
    name: str, annotations: dict[str, str], email: str | None, display_name: str | None
) -> None:
    """Print the User entity ``name`` with ``annotations``, its name and email checked as the
    catalog checks them."""
    if not is_valid_name(name):
        raise click.BadParameter(
            f"{name!r} is not a valid entity name: 1-63 letters, digits, '-', '_' or '.', "
            "beginning and ending with a letter or digit",
            param_hint="--name",
        )
    if email is not None and email_key(email) is None:
        raise click.BadParameter(f"{email!r} is not an email address", param_hint="--email")
    profile = {"displayName": display_name or name, **({"email": email} if email else {})}
    entity = {
        "apiVersion": API_VERSION,
        "kind": "User",
        "metadata": {"name": name, "annotations": annotations},
        "spec": {"profile": profile, "memberOf": []},
    }
    click.echo(yaml.safe_dump(entity, sort_keys=False, allow_unicode=True), nl=False)


#: ``python -m bitbucket_signin``: the commands that need no app.
standalone = click.Group(
    "bitbucket_signin",
    help="Bitbucket sign-in without an app: check a catalog file, write User entities.",
    commands=[check, user_entity, user_entity_server],
)
