"""Generic repository: insert, get, list, count, update and upsert for one table.

SQL text is built once per table from the table definition, so column lists can never
drift from the schema. Values cross the boundary through a per-column codec: amounts
become integer units on the way in and Decimals on the way out.
"""

from __future__ import annotations

import builtins
import functools
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from functools import cached_property
from typing import Any, Generic, TypeVar

from pydantic import TypeAdapter
from pydantic import ValidationError as PydanticValidationError
from sqlalchemy import Boolean, Column, Table, Text
from sqlalchemy.sql.visitors import iterate

from tradedb.errors import AmountOutOfRange, DuplicateRecord, UnknownName, ValidationError
from tradedb.models.base import CreatedRecord, Record, as_tradedb_error, validate_record
from tradedb.models.values import to_epoch_ms
from tradedb.schema.money import ScaledDecimal
from tradedb.store.database import Database, Dialect

CreateT = TypeVar("CreateT", bound=Record)
ReadT = TypeVar("ReadT", bound=CreatedRecord)

DEFAULT_LIMIT = 100
MAX_LIMIT = 100_000


@dataclass(frozen=True)
class TableSpec(Generic[CreateT, ReadT]):
    """How one table is read and written."""

    table: Table
    create: type[CreateT]
    read: type[ReadT]
    # Column that time-range filters and the default order use; None orders by id.
    time_column: str | None
    # Columns (or SQL expressions) of the UNIQUE key that upserts resolve on.
    conflict_target: tuple[str, ...] | None = None
    # Ledger tables commit with synchronous=FULL; bulk market data may use NORMAL.
    durable: bool = True
    # Parses a time-range bound for `time_column`.
    parse_time: Callable[[object, str], object] = to_epoch_ms


@dataclass(frozen=True)
class Page(Generic[ReadT]):
    """One page of a listing; pass `next_after` as `after` to get the next page."""

    items: builtins.list[ReadT]
    next_after: str | None = None


@dataclass(frozen=True)
class _Column:
    name: str
    scale: int | None  # decimal scale of an amount column, None otherwise
    dialect: Dialect
    precision: int = 0  # and its precision
    is_bool: bool = False

    def encode(self, value: Any) -> Any:
        if value is None:
            return None
        if self.scale is not None:
            return self.dialect.amount_in(value, self.scale, self.name, self.precision)
        return value

    def decode(self, value: Any) -> Any:
        if value is None:
            return None
        if self.scale is not None:
            return self.dialect.amount_out(value, self.scale)
        if self.is_bool:
            return bool(value)
        return value


class _Values:
    """Checked values seen as a record, for error messages that name the key."""

    def __init__(self, values: Mapping[str, Any]) -> None:
        self.__dict__.update(values)


@dataclass
class _Statements:
    insert: str  # INSERT ... VALUES (...), without RETURNING
    returning: str  # the read columns, for RETURNING clauses
    select: str
    write_columns: list[_Column]
    read_columns: list[_Column]
    columns: dict[str, _Column] = field(default_factory=dict)


class Repository(Generic[CreateT, ReadT]):
    """Reads and writes one table. Each call is one transaction."""

    def __init__(self, db: Database, spec: TableSpec[CreateT, ReadT]) -> None:
        self.db = db
        self.spec = spec
        self.name = spec.table.name

    # --- SQL built once from the table definition --------------------------------------

    @cached_property
    def _sql(self) -> _Statements:
        table = self.spec.table
        columns = {
            column.name: _Column(
                column.name,
                column.type.spec.scale if isinstance(column.type, ScaledDecimal) else None,
                self.db.dialect,
                is_bool=isinstance(column.type, Boolean),
                precision=(
                    column.type.spec.precision if isinstance(column.type, ScaledDecimal) else 0
                ),
            )
            for column in table.columns
        }
        write = [columns[name] for name in self.spec.create.model_fields]
        read = [columns[name] for name in columns if name in self.spec.read.model_fields]
        names = ", ".join(column.name for column in write)
        marks = ", ".join("?" for _ in write)
        read_list = ", ".join(column.name for column in read)
        return _Statements(
            insert=f"INSERT INTO {self.name} ({names}) VALUES ({marks})",
            returning=read_list,
            select=f"SELECT {read_list} FROM {self.name}",
            write_columns=write,
            read_columns=read,
            columns=columns,
        )

    @cached_property
    def _touch(self) -> builtins.list[str]:
        """Sets updated_at in the statement itself, so that RETURNING shows the new value
        (the trigger that also maintains it runs after RETURNING is computed)."""
        if "updated_at" not in self._sql.columns:
            return []
        return [f"updated_at = {self.db.dialect.epoch_seconds_now}"]

    def _row_values(self, record: CreateT) -> tuple[Any, ...]:
        return tuple(
            column.encode(getattr(record, column.name)) for column in self._sql.write_columns
        )

    def _to_record(self, row: Sequence[Any]) -> ReadT:
        return self._assemble(
            {
                name: value if decode is None or value is None else decode(value)
                for (name, decode), value in zip(self._decoders, row, strict=True)
            }
        )

    def _assemble(self, values: dict[str, Any]) -> ReadT:
        # Rows come from our own validated writes, so they are trusted as they are. Every
        # field is present, so the record is assembled directly: what model_construct
        # does, without its per-field default handling, which the ledger's hot path feels.
        record = object.__new__(self.spec.read)
        object.__setattr__(record, "__dict__", values)
        object.__setattr__(record, "__pydantic_fields_set__", set(values))
        object.__setattr__(record, "__pydantic_extra__", None)
        object.__setattr__(record, "__pydantic_private__", None)
        return record

    @cached_property
    def _decoders(self) -> builtins.list[tuple[str, Callable[[Any], Any] | None]]:
        """Per read column: its name and how a stored non-NULL value is decoded."""
        decoders: builtins.list[tuple[str, Callable[[Any], Any] | None]] = []
        for column in self._sql.read_columns:
            decode: Callable[[Any], Any] | None = None
            if column.scale is not None:
                decode = functools.partial(self.db.dialect.amount_out, scale=column.scale)
            elif column.is_bool:
                decode = bool
            decoders.append((column.name, decode))
        return decoders

    # --- writes --------------------------------------------------------------------------

    def validate(self, data: CreateT | Mapping[str, Any]) -> CreateT:
        return validate_record(self.spec.create, data)

    def insert(self, data: CreateT | Mapping[str, Any]) -> ReadT:
        """Insert one record and return it as stored (id, defaults and all)."""
        record = self.validate(data)
        values = self._row_values(record)
        with self.db.transaction(durable=self.spec.durable) as conn:
            statement = f"{self._sql.insert} RETURNING {self._sql.returning}"
            row = self._execute(conn, statement, values, record).fetchone()
        return self._to_record(row)

    def insert_many(self, data: Iterable[CreateT | Mapping[str, Any]]) -> int:
        """Insert many records in one transaction; any bad one leaves nothing written."""
        rows = [self._row_values(self.validate(item)) for item in data]
        with self.db.transaction(durable=self.spec.durable) as conn:
            try:
                conn.executemany(self._sql.insert, rows)
            except self.db.IntegrityError as exc:
                raise self._integrity_error(exc, None) from None
        return len(rows)

    def upsert(self, data: CreateT | Mapping[str, Any]) -> ReadT:
        """Insert, or update the row holding the same UNIQUE key; return it as stored."""
        statement = self._upsert_statement
        record = self.validate(data)
        with self.db.transaction(durable=self.spec.durable) as conn:
            row = self._execute(conn, statement, self._row_values(record), record).fetchone()
        return self._to_record(row)

    @cached_property
    def _upsert_statement(self) -> str:
        target = self.spec.conflict_target
        if target is None:
            raise UnknownName("table", self.name, "has no UNIQUE key to upsert on")
        updates = ", ".join(
            [
                f"{column.name} = excluded.{column.name}"
                for column in self._sql.write_columns
                if column.name not in target
            ]
            + self._touch
        )
        return (
            f"{self._sql.insert} ON CONFLICT ({', '.join(target)}) DO UPDATE SET {updates} "
            f"RETURNING {self._sql.returning}"
        )

    # --- writes of values a service has already checked ---------------------------------
    # The ledger validates its inputs field by field and derives the rest itself, so its
    # hot path skips record validation; amounts are still range-checked as they encode.

    def insert_checked(self, values: Mapping[str, Any]) -> ReadT:
        """Insert a row from checked values (inside the caller's transaction).

        Only what the database fills in (id, defaults) is read back; the record is the
        given values plus those.
        """
        self.db.require_write(f"{self.name}.insert_checked")
        names = tuple(values)
        statement, filled = self._checked_insert_sql(names)
        row = self._execute_checked(statement, self._encode(values), values)
        return self._assemble({**values, **self._decode_some(filled, row)})

    def update_checked(self, current: ReadT, changes: Mapping[str, Any]) -> ReadT:
        """Update one row, read in the caller's transaction, from checked values."""
        self.db.require_write(f"{self.name}.update_checked")
        statement = self._checked_update_sql(tuple(changes))
        row = self._execute_checked(statement, (*self._encode(changes), current.id), changes)
        if row is None:
            raise UnknownName("id", current.id, f"no row of {self.name} has this id")
        touched = dict(zip(self._touched, row[: len(self._touched)], strict=True))
        return self._assemble({**current.__dict__, **changes, **touched})

    def _decode_some(self, names: Sequence[str], row: Sequence[Any]) -> dict[str, Any]:
        columns = self._sql.columns
        return {name: columns[name].decode(value) for name, value in zip(names, row, strict=True)}

    @cached_property
    def _touched(self) -> tuple[str, ...]:
        return ("updated_at",) if self._touch else ()

    def select_one(self, where_sql: str, params: Sequence[Any]) -> ReadT | None:
        """The first row matching a WHERE clause written by the store's own modules."""
        row = self.db.connection.execute(
            f"{self._sql.select} WHERE {where_sql} LIMIT 1", params
        ).fetchone()
        return None if row is None else self._to_record(row)

    def select_all(self, where_sql: str, params: Sequence[Any]) -> builtins.list[ReadT]:
        rows = self.db.connection.execute(
            f"{self._sql.select} WHERE {where_sql} ORDER BY id", params
        ).fetchall()
        return [self._to_record(row) for row in rows]

    def _encode(self, values: Mapping[str, Any]) -> builtins.list[Any]:
        columns = self._sql.columns
        return [columns[name].encode(value) for name, value in values.items()]

    @functools.cache  # noqa: B019 - one repository per table and store, few column sets
    def _checked_insert_sql(self, names: tuple[str, ...]) -> tuple[str, tuple[str, ...]]:
        filled = tuple(column.name for column in self._sql.read_columns if column.name not in names)
        marks = ", ".join("?" for _ in names)
        return (
            f"INSERT INTO {self.name} ({', '.join(names)}) VALUES ({marks}) "
            f"RETURNING {', '.join(filled)}"
        ), filled

    @functools.cache  # noqa: B019 - as above
    def _checked_update_sql(self, names: tuple[str, ...]) -> str:
        assignments = ", ".join([f"{name} = ?" for name in names] + self._touch)
        returning = ", ".join(self._touched) or "id"
        return f"UPDATE {self.name} SET {assignments} WHERE id = ? RETURNING {returning}"

    def _execute_checked(
        self, statement: str, params: Sequence[Any], values: Mapping[str, Any]
    ) -> Any:
        try:
            return self.db.connection.execute(statement, params).fetchone()
        except self.db.IntegrityError as exc:
            raise self._integrity_error(exc, _Values(values)) from None

    def update(self, record_id: int, changes: Mapping[str, Any]) -> ReadT:
        """Change some fields of one row; the whole row is validated again first."""
        unknown = [name for name in changes if name not in self.spec.create.model_fields]
        if unknown:
            raise UnknownName(unknown[0], changes[unknown[0]], f"is not a column of {self.name}")
        with self.db.transaction(durable=self.spec.durable) as conn:
            current = self.get(record_id)
            if current is None:
                raise UnknownName("id", record_id, f"no row of {self.name} has this id")
            merged = {name: getattr(current, name) for name in self.spec.create.model_fields}
            merged.update(changes)
            record = self.validate(merged)
            columns = [self._sql.columns[name] for name in changes]
            assignments = ", ".join([f"{column.name} = ?" for column in columns] + self._touch)
            values = [column.encode(getattr(record, column.name)) for column in columns]
            statement = (
                f"UPDATE {self.name} SET {assignments} WHERE id = ? RETURNING {self._sql.returning}"
            )
            row = self._execute(conn, statement, (*values, record_id), record).fetchone()
        return self._to_record(row)

    def delete(self, record_id: int) -> ReadT | None:
        """Remove one row; the row as it was, or None when no row has this id."""
        with self.db.transaction(durable=self.spec.durable) as conn:
            row = conn.execute(
                f"DELETE FROM {self.name} WHERE id = ? RETURNING {self._sql.returning}",
                (record_id,),
            ).fetchone()
        return None if row is None else self._to_record(row)

    def _execute(self, conn: Any, statement: str, values: Sequence[Any], record: Record) -> Any:
        try:
            return conn.execute(statement, values)
        except self.db.IntegrityError as exc:
            raise self._integrity_error(exc, record) from None

    def _integrity_error(self, exc: Exception, record: object | None) -> Exception:
        violation = self.db.violation(exc)
        if violation.kind == "unique":
            names = (
                self._constraint_columns(violation.name)
                if violation.name
                else builtins.list(violation.columns)
            )
            key = tuple(getattr(record, name, None) for name in names)
            return DuplicateRecord(
                ", ".join(names),
                key[0] if len(key) == 1 else key,
                f"UNIQUE: {self.name} already holds a row with this key",
            )
        if violation.kind in ("check", "range") and record is not None:
            overflow = self._generated_overflow(violation.name, record)
            if overflow is not None:
                return overflow
        rule = f"CHECK {violation.name}" if violation.kind == "check" else violation.message
        return ValidationError(self.name, None, f"refused by the database: {rule}")

    def _generated_overflow(self, constraint: str | None, record: object) -> Exception | None:
        """A generated sum (wallets.total_balance) beyond what the column holds: SQLite turns
        an overflowing integer sum into a float, which fails the column's storage guard;
        PostgreSQL reports a numeric overflow. Say so in the column's terms."""
        for column in self.spec.table.columns:
            computed = column.computed
            if computed is None or not isinstance(column.type, ScaledDecimal):
                continue
            if constraint is not None and not constraint.startswith(
                f"ck_{self.name}_{column.name}_"
            ):
                continue
            parts = [part.strip() for part in str(computed.sqltext).split("+")]
            total = sum((getattr(record, part) for part in parts), Decimal(0))
            limit = column.type.spec.largest
            if constraint is None and abs(total) <= limit:
                continue
            return AmountOutOfRange(
                column.name,
                total,
                f"{computed.sqltext} exceeds ±{limit}, the most {self.db.engine} stores in "
                "this column",
            )
        return None

    def _constraint_columns(self, name: str) -> builtins.list[str]:
        """Table columns a UNIQUE constraint or index covers, in table order (expression
        indexes included)."""
        table = self.spec.table
        expressions: builtins.list[Any] = []
        for index in table.indexes:
            if index.name == name:
                expressions = builtins.list(index.expressions)
        for constraint in table.constraints:
            if constraint.name == name:
                expressions = builtins.list(getattr(constraint, "columns", ()))
        used = {
            node.name
            for expr in expressions
            if not isinstance(expr, str)
            for node in iterate(expr)
            if isinstance(node, Column)
        }
        return [column.name for column in table.columns if column.name in used] or [name]

    # --- reads ---------------------------------------------------------------------------

    def get(self, record_id: int) -> ReadT | None:
        row = self.db.connection.execute(
            f"{self._sql.select} WHERE id = ?", (record_id,)
        ).fetchone()
        return None if row is None else self._to_record(row)

    def list(
        self,
        where: Mapping[str, Any] | None = None,
        *,
        since: object = None,
        until: object = None,
        after: str | None = None,
        limit: int = DEFAULT_LIMIT,
        newest_first: bool = False,
    ) -> Page[ReadT]:
        """Rows matching `where` (column = value; a list means IN; None means IS NULL).

        `since` (inclusive) and `until` (exclusive) bound the table's time column. Rows come
        in time order (then id), and `after` continues from a previous page's `next_after`
        without OFFSET, so paging stays fast however deep it goes.
        """
        if not isinstance(limit, int) or isinstance(limit, bool) or not 1 <= limit <= MAX_LIMIT:
            raise ValidationError("limit", limit, f"must be an integer from 1 to {MAX_LIMIT}")
        clauses, params = self._where(where)
        order_column = self.spec.time_column or "id"
        if since is not None:
            clauses.append(f"{order_column} >= ?")
            params.append(self._parse_time(since, "since"))
        if until is not None:
            clauses.append(f"{order_column} < ?")
            params.append(self._parse_time(until, "until"))
        direction, compare = ("DESC", "<") if newest_first else ("ASC", ">")
        if after is not None:
            position, record_id = self._parse_after(after)
            clauses.append(f"({order_column}, id) {compare} (?, ?)")
            params += [position, record_id]
        sql = self._sql.select
        if clauses:
            sql += " WHERE " + " AND ".join(clauses)
        sql += f" ORDER BY {order_column} {direction}, id {direction} LIMIT ?"
        rows = self.db.connection.execute(sql, (*params, limit + 1)).fetchall()
        items = [self._to_record(row) for row in rows[:limit]]
        next_after = None
        if len(rows) > limit:
            last = items[-1]
            next_after = f"{self._raw(order_column, getattr(last, order_column))}:{last.id}"
        return Page(items, next_after)

    def every(
        self,
        where: Mapping[str, Any] | None = None,
        *,
        since: object = None,
        until: object = None,
        page_size: int = MAX_LIMIT,
    ) -> Iterator[ReadT]:
        """Every row `list` would give, page after page, in its order."""
        after = None
        while True:
            page = self.list(where, since=since, until=until, after=after, limit=page_size)
            yield from page.items
            if page.next_after is None:
                return
            after = page.next_after

    def count(self, where: Mapping[str, Any] | None = None) -> int:
        clauses, params = self._where(where)
        sql = f"SELECT count(*) FROM {self.name}"
        if clauses:
            sql += " WHERE " + " AND ".join(clauses)
        return int(self.db.connection.execute(sql, params).fetchone()[0])

    def _where(
        self, where: Mapping[str, Any] | None
    ) -> tuple[builtins.list[str], builtins.list[Any]]:
        clauses: builtins.list[str] = []
        params: builtins.list[Any] = []
        for name, value in (where or {}).items():
            column = self._sql.columns.get(name)
            if column is None:
                raise UnknownName(name, value, f"is not a column of {self.name}")
            if value is None:
                clauses.append(f"{name} IS NULL")
            elif isinstance(value, (list, tuple, set, frozenset)):
                encoded = [self._filter_value(name, item) for item in value]
                if not encoded:
                    clauses.append("1 = 0")
                    continue
                clauses.append(f"{name} IN ({', '.join('?' for _ in encoded)})")
                params += encoded
            else:
                clauses.append(f"{name} = ?")
                params.append(self._filter_value(name, value))
        return clauses, params

    def _filter_value(self, name: str, value: Any) -> Any:
        """A filter value passes the same rule as the field it filters, then is encoded."""
        adapter = self._field_adapters.get(name)
        if adapter is not None:
            try:
                value = adapter.validate_python(value)
            except PydanticValidationError as exc:
                error = as_tradedb_error(exc, value)
                raise ValidationError(name, value, error.rule) from None
        return self._raw(name, value)

    def _raw(self, name: str, value: Any) -> Any:
        return self._sql.columns[name].encode(value) if isinstance(value, Decimal) else value

    @cached_property
    def _field_adapters(self) -> dict[str, TypeAdapter[Any]]:
        fields = {**self.spec.create.model_fields, **self.spec.read.model_fields}
        adapters: dict[str, TypeAdapter[Any]] = {}
        for name, info in fields.items():
            annotation: Any = info.rebuild_annotation()
            adapters[name] = TypeAdapter(annotation)
        return adapters

    def _parse_time(self, value: object, name: str) -> object:
        return self.spec.parse_time(value, name)

    def _parse_after(self, token: str) -> tuple[object, int]:
        position, sep, record_id = str(token).rpartition(":")
        refused = ValidationError("after", token, "is not a page token returned by list()")
        if not sep or not record_id.isdigit():
            raise refused
        if position.lstrip("-").isdigit():
            return int(position), int(record_id)
        # Only a text time column (performance dates) has positions that are not integers;
        # anywhere else text would sort after every number and silently restart the list.
        if not self._text_ordered:
            raise refused
        try:
            return self.spec.parse_time(position, "after"), int(record_id)
        except ValidationError:
            raise refused from None

    @cached_property
    def _text_ordered(self) -> bool:
        column = self.spec.time_column
        return column is not None and isinstance(self.spec.table.c[column].type, Text)
