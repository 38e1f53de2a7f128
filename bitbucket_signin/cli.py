"""``flask bitbucket-signin …``: admin commands for the catalog and the resolvers."""

from __future__ import annotations

from collections.abc import Callable

import click
from flask.cli import with_appcontext

from .app_extension import get_extension
from .errors import SignInError
from .profile import BitbucketProfile, braced_uuid
from .providers import DATA_CENTER
from .resolvers import Identity
from .server_profile import ServerProfile


@click.group("bitbucket-signin")
def cli() -> None:
    """Bitbucket sign-in: check the catalog, try the resolvers."""


@cli.command("check")
@with_appcontext
def check() -> None:
    """Load the catalog as the app would and report what it holds."""
    catalog = get_extension().catalog_store.current()
    click.echo(
        f"{len(catalog.users)} users, {len(catalog.groups)} groups in {len(catalog.files)} file(s)"
    )
    for warning in catalog.warnings:
        click.echo(f"warning: {warning}")


@cli.command("resolve")
@click.option("--uuid", required=True, help="The Bitbucket account uuid, braces optional.")
@click.option("--account-id", default=None)
@click.option("--username", default=None)
@click.option("--email", default=None)
@click.option("--name", "display_name", default="", help="The account's display name.")
@with_appcontext
def resolve_command(
    uuid: str,
    account_id: str | None,
    username: str | None,
    email: str | None,
    display_name: str,
) -> None:
    """Run the configured resolvers for a Bitbucket account and print who it signs in as."""
    profile = BitbucketProfile(
        uuid=braced_uuid(uuid),
        account_id=account_id,
        display_name=display_name,
        username=username,
        email=email,
    )
    _show(lambda: get_extension().resolve(profile))


@cli.command("resolve-server")
@click.option("--id", "user_id", type=int, required=True, help="The Data Center user id.")
@click.option("--name", required=True, help="The login name (what whoami says).")
@click.option("--slug", required=True, help="The user slug (jane@example.com: jane_example.com).")
@click.option("--email", default=None)
@click.option("--display-name", default="", help="The account's display name.")
@with_appcontext
def resolve_server_command(
    user_id: int, name: str, slug: str, email: str | None, display_name: str
) -> None:
    """Run the Bitbucket Data Center resolvers for an account and print who it signs in as."""
    profile = ServerProfile(
        id=user_id, name=name, slug=slug, display_name=display_name, email=email
    )
    extension = get_extension()
    _show(
        lambda: extension.provider(DATA_CENTER).resolve(profile, extension.catalog_store.current())
    )


def _show(resolve: Callable[[], Identity]) -> None:
    """Print the identity ``resolve`` finds, or its refusal as the command's error."""
    try:
        identity = resolve()
    except SignInError as error:
        raise click.ClickException(error.message) from None
    click.echo(identity.user_entity_ref)
    for ref in identity.ownership_entity_refs:
        click.echo(f"  owns as {ref}")
