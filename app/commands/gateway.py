"""`flask kiket token create EMAIL --scopes …` and `flask kiket keys rotate`."""

from __future__ import annotations

import click
from flask.cli import AppGroup

from app.services import accounts
from app.services.errors import ServiceError
from app.services.gateway import credentials, tokens

token_cli = AppGroup("token", help="Personal API tokens.")
keys_cli = AppGroup("keys", help="Keys that sign extension runtime tokens.")


@token_cli.command("create")
@click.argument("email")
@click.option("--scopes", required=True, help="Comma-separated scopes, or * for whatever the user may do.")
@click.option("--name", default="cli", show_default=True, help="What the token is for.")
def create_token(email: str, scopes: str, name: str) -> None:
    """Create a personal token for EMAIL; the token alone is printed on the last line (shown once)."""
    user = accounts.find_user(email)
    if user is None:
        raise click.ClickException(f"no account {email!r}")
    try:
        key, token = credentials.create_personal_token(user, name, [s for s in scopes.split(",") if s.strip()])
    except ServiceError as error:
        raise click.ClickException(error.detail) from None
    click.echo(f"Token {key.id} for {user.email}, scopes {' '.join(key.scopes)}:", err=True)
    click.echo(token)


@keys_cli.command("rotate")
def rotate_keys() -> None:
    """Start signing runtime tokens with a new key; the old one stays published until the next rotation."""
    key = tokens.rotate()
    click.echo(f"Runtime tokens are now signed with key {key.kid}; the previous key is still published.")
