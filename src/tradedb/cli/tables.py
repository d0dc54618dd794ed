"""How the commands' tables show numbers: each column of amounts lined up on its decimal
point, so that a person can compare them at a glance.

The rules (docs/cli-conventions.md tells users):

- An amount in a currency (a quantity, a price, a balance, a fee, P&L in a quote
  currency) is shown exactly. tradedb keeps no exchange's market precision, so a table
  takes it from what it shows: the values of one market (or one asset) in a column all
  show as many decimals as the one of them that needs the most. A column that holds one
  market therefore reads at that market's precision, with every digit that is stored.
- A USD amount (equity, P&L and values in USD, portfolio totals) shows 2 decimals,
  rounded half-even for display only.
- A percentage or ratio (win rate, Sharpe ratio, drawdown) shows the 4 decimals it is
  stored with.
- Whatever their precision, the decimal points of a column line up; a whole number
  leaves its point's place blank.

`--json` is the exact form: every amount at its column's scale (models.values.format_fixed).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from decimal import Decimal

from rich.cells import cell_len
from rich.console import RenderableType
from rich.table import Table
from rich.text import Text

from tradedb.models.values import EXACT, PERCENT, to_cents

USD_PLACES = 2


@dataclass(frozen=True)
class Figure:
    """A number for a table cell; `add_rows` formats it together with its column."""

    value: Decimal | None
    # At least this many decimals.
    places: int = 0
    # The market or asset whose values in the column share one precision.
    precision_of: str | None = None
    # Shown after the number, e.g. a fee's currency.
    unit: str = ""
    # A '+' before a positive number (a difference).
    plus: bool = False


Cell = RenderableType | Figure


def exact(
    value: Decimal | None, precision_of: str | None = None, unit: str = "", *, plus: bool = False
) -> Figure:
    """An amount shown exactly, at the precision of `precision_of`'s values in its column."""
    return Figure(value, precision_of=precision_of, unit=unit, plus=plus)


def usd(value: Decimal | None) -> Figure:
    """A USD amount, rounded half-even to cents for people (programs read --json)."""
    return Figure(None if value is None else to_cents(value), USD_PLACES)


def percent(value: Decimal | None) -> Figure:
    """A percentage or ratio at the 4 decimals it is stored with."""
    return Figure(value, PERCENT.scale)


def decimals(value: Decimal) -> int:
    """How many decimals `value` needs to be written exactly ('1.50' needs 1)."""
    exponent = value.normalize(EXACT).as_tuple().exponent
    return max(0, -exponent) if isinstance(exponent, int) else 0


def aligned(figures: Sequence[Figure], width: int = 0) -> list[str]:
    """The column's cells, all of one width (at least `width`), their decimal points in
    one place; an empty cell where a figure has no value."""
    places: dict[str | None, int] = {}
    for figure in figures:
        if figure.value is not None:
            needed = max(figure.places, decimals(figure.value))
            places[figure.precision_of] = max(places.get(figure.precision_of, 0), needed)
    # Each number as its whole part, its point and fraction, and its unit.
    parts: list[tuple[str, str, str] | None] = []
    for figure in figures:
        if figure.value is None:
            parts.append(None)
            continue
        sign = "+" if figure.plus and figure.value > 0 else ""
        written = sign + format(figure.value, f".{places[figure.precision_of]}f")
        whole, point, fraction = written.partition(".")
        parts.append((whole, point + fraction, figure.unit))
    present = [part for part in parts if part is not None]
    wholes = max((len(whole) for whole, _, _ in present), default=0)
    fractions = max((len(fraction) for _, fraction, _ in present), default=0)
    units = max((len(unit) for _, _, unit in present), default=0)
    cells = []
    for part in parts:
        if part is None:
            cells.append("")
            continue
        whole, fraction, unit = part
        cell = whole.rjust(wholes) + fraction.ljust(fractions)
        cells.append(f"{cell} {unit.ljust(units)}" if units else cell)
    width = max([width, *(len(cell) for cell in cells)])
    return [cell.rjust(width) if cell else "" for cell in cells]


def add_rows(table: Table, rows: Iterable[Sequence[Cell]]) -> None:
    """Add `rows` to `table`, each column's Figures formatted together by `aligned`.

    A column's figures are made as wide as the column (its header and other cells
    included) and kept as they are: rich would strip the blanks that keep a short
    fraction's point in line."""
    given = [list(row) for row in rows]
    shown: list[list[RenderableType]] = [
        ["" if isinstance(cell, Figure) else cell for cell in row] for row in given
    ]
    for index, column in enumerate(table.columns):
        figures = [
            (at, row[index]) for at, row in enumerate(given) if isinstance(row[index], Figure)
        ]
        if not figures:
            continue
        others = [
            column.header,
            *(row[index] for row in given if not isinstance(row[index], Figure)),
        ]
        width = max((cell_len(cell) for cell in others if isinstance(cell, str)), default=0)
        cells = aligned([figure for _, figure in figures if isinstance(figure, Figure)], width)
        for (at, _), cell in zip(figures, cells, strict=True):
            shown[at][index] = Text(cell, justify="left", no_wrap=True)
    for row in shown:
        table.add_row(*row)
