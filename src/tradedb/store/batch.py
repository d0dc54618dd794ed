"""A batch of checked rows on its way into a table, for the engines' bulk writers."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from typing import Any, Literal

OnConflict = Literal["replace", "keep"]


@dataclass(frozen=True)
class Batch:
    """Checked rows ready for SQL: per-row values, flat, and values shared by every row.

    Rows checked column-wise arrive as NumPy int64 `arrays` only; their flat `values` are
    made on first use. PostgreSQL copies the arrays and never needs them: making them
    took 0.8 s of a million-candle write.
    """

    table: str
    key: tuple[str, ...]
    columns: tuple[str, ...]
    given_values: list[Any] | None  # len(columns) per row; None when `arrays` holds them
    constants: tuple[tuple[str, object], ...] = ()
    # The same values as NumPy int64 columns, when they were checked column-wise.
    arrays: Any = None

    @cached_property
    def values(self) -> list[Any]:
        if self.given_values is not None:
            return self.given_values
        flat: list[Any] = self.arrays.T.ravel().tolist()
        return flat

    def __len__(self) -> int:
        if self.given_values is None:
            return int(self.arrays.shape[1])
        return len(self.given_values) // len(self.columns)
