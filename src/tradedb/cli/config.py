"""`tradedb config get|set|list|unset`: the bot's typed settings in bot_config."""

from __future__ import annotations

from typing import Annotated, Any

import typer
from rich.table import Table
from rich.text import Text

from tradedb.cli.common import (
    DbOption,
    JsonOption,
    moment,
    open_database,
    out,
    print_json,
    user_errors,
)
from tradedb.cli.helpstyle import App
from tradedb.services.ops.config import CONFIG_TYPES, ConfigEntry

config_app = App(
    help="The bot's typed settings (bot_config); secrets belong in environment variables.",
    no_args_is_help=True,
)

KeyArgument = Annotated[str, typer.Argument(help="The setting's key, e.g. capital.sma.kraken.")]
StrategyOption = Annotated[
    str | None,
    typer.Option(help="A strategy's own setting: the key is strategy.<NAME>.<KEY>."),
]


@config_app.command("get")
@user_errors
def get(
    key: KeyArgument,
    strategy: StrategyOption = None,
    db: DbOption = None,
    as_json: JsonOption = False,
) -> None:
    """Print one setting's value (active or not: --json says which)."""
    with open_database(db, readonly=True) as database:
        entry = database.config.get(key, strategy=strategy)
    if as_json:
        print_json(entry.as_json())
        return
    out.print(entry.text, highlight=False, markup=False, soft_wrap=True)


@config_app.command("set")
@user_errors
def set_(
    key: KeyArgument,
    value: Annotated[
        str | None,
        typer.Argument(help="The value; leave it out to change only the options of a key."),
    ] = None,
    config_type: Annotated[
        str | None,
        typer.Option(
            "--type",
            help=f"One of {', '.join(CONFIG_TYPES)} (default: the key's type, else string).",
            show_default=False,
        ),
    ] = None,
    description: Annotated[str | None, typer.Option(help="What the setting is for.")] = None,
    strategy: StrategyOption = None,
    active: Annotated[
        bool | None,
        typer.Option("--active/--inactive", help="Put in force, or keep it stored but unused."),
    ] = None,
    db: DbOption = None,
    as_json: JsonOption = False,
) -> None:
    """Create or change a setting; the value is checked against its type."""
    with open_database(db) as database:
        entry = database.config.set(
            key,
            value,
            config_type=config_type,
            description=description,
            strategy=strategy,
            active=active,
        )
    if as_json:
        print_json(entry.as_json())
        return
    state = "" if entry.is_active else " (inactive)"
    out.print(
        f"{entry.key} = {entry.text} ({entry.config_type}){state}", highlight=False, markup=False
    )


@config_app.command("list")
@user_errors
def list_(
    prefix: Annotated[
        str | None, typer.Option(help="Only keys that start with this, e.g. capital.")
    ] = None,
    strategy: Annotated[str | None, typer.Option(help="Only this strategy's settings.")] = None,
    include_inactive: Annotated[
        bool, typer.Option("--all", help="Include inactive settings.")
    ] = False,
    db: DbOption = None,
    as_json: JsonOption = False,
) -> None:
    """List settings by key."""
    with open_database(db, readonly=True) as database:
        found = database.config.entries(
            prefix=prefix, strategy=strategy, include_inactive=include_inactive
        )
    if as_json:
        print_json([entry.as_json() for entry in found])
        return
    out.print(_table(found))


@config_app.command("unset")
@user_errors
def unset(
    key: KeyArgument,
    strategy: StrategyOption = None,
    db: DbOption = None,
    as_json: JsonOption = False,
) -> None:
    """Delete a setting (set --inactive keeps it stored but out of force)."""
    with open_database(db) as database:
        removed = database.config.unset(key, strategy=strategy)
    if as_json:
        print_json({"key": removed, "deleted": True})
        return
    out.print(f"{removed} deleted", highlight=False, markup=False)


def _table(found: list[ConfigEntry]) -> Table:
    table = Table("key", "value", "type", "strategy", "active", "updated (UTC)", "description")
    for entry in found:
        row: list[Any] = [
            Text(entry.key),
            Text(entry.text),
            entry.config_type,
            entry.strategy or "",
            "yes" if entry.is_active else "no",
            moment(entry.updated_at * 1000),
            Text(entry.description or ""),
        ]
        table.add_row(*row)
    return table


def register(app: typer.Typer) -> None:
    """Add `tradedb config` to the app."""
    app.add_typer(config_app, name="config")
