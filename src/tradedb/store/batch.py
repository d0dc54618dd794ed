"""A batch of checked rows on its way into a table, for the engines' bulk writers."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

OnConflict = Literal["replace", "keep"]


@dataclass(frozen=True)
class Batch:
    """Checked rows ready for SQL: per-row values, flat, and values shared by every row."""

    table: str
    key: tuple[str, ...]
    columns: tuple[str, ...]
    values: list[Any]  # len(columns) per row
    constants: tuple[tuple[str, object], ...] = ()
    # The same values as NumPy int64 columns, when they were checked column-wise.
    arrays: Any = None

    def __len__(self) -> int:
        return len(self.values) // len(self.columns)
