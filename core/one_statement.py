"""Several writes sent to PostgreSQL as ONE statement, data-modifying CTEs chained in a WITH:
one round trip instead of one per row, for the authorization's hot path (issue 19).

Rows are model instances, inserted in the order added; a foreign key to a row added before is
written as that row's id, read from its CTE (`(SELECT id FROM w0)`), so a decision and its holds
go in together. Raw UPDATEs and INSERT ... SELECTs ride along. Every sub-statement runs on the
same snapshot and none sees another's effects (PostgreSQL's rule for data-modifying CTEs): a row
is updated at most once, and what must read a row inserted here takes its id, not a join.
CHECK and unique constraints fire as usual and abort the statement, with its transaction; the
project's foreign keys are deferred to the commit.

Model.save() and the pre/post_save signals are not run, as with bulk_create: only for models
written nowhere else on this path (save() overrides there guard against updates only)."""

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import cache
from typing import Any, TypeVar

import orjson
from django.conf import settings
from django.db import DEFAULT_DB_ALIAS, connection, connections
from django.db.backends.postgresql.operations import get_json_dumps
from django.db.models import (
    BooleanField,
    CharField,
    Field,
    ForeignKey,
    IntegerField,
    JSONField,
    Model,
    TextField,
)
from django.db.models.fields import AutoFieldMixin
from psycopg.types.json import Jsonb

from core.prepared import commits_here, prepared_cursor


def one_statement_available() -> bool:
    """Whether the hot path writes in one statement: on PostgreSQL, unless
    AUTHORIZE_ONE_STATEMENT is off (the portable ORM path then runs, as on SQLite)."""
    return connection.vendor == "postgresql" and settings.AUTHORIZE_ONE_STATEMENT


@dataclass(frozen=True)
class _Table:
    """What inserting a row of one model always needs: its INSERT's head, and the fields whose
    values it sends (primary key and database defaults left out), with whether each is a
    relation (whose target may be a row added before). Worked out once per model: per row it
    was a third of the statement's Python (issue 19)."""

    head: str
    fields: tuple[
        tuple[
            Any, bool, tuple[type, ...], Callable[[int], Any] | None, Callable[[Any], Any] | None
        ],
        ...,
    ]
    returning: str


def _sent_as(field: Any, connection: Any) -> tuple[tuple[type, ...], Callable[[int], Any] | None]:
    """The types of value `field` sends without get_db_prep_save's four calls (about half a
    payment's forty, issue 19), and for an int what Django would wrap it in. When the field's
    class changes none of the methods between its value and the database: a str of a
    CharField or TextField and a bool of a BooleanField unchanged; an int of an integer field,
    or of a relation to one, as Django makes it on this connection (psycopg's Int4 or Int8 by
    the column's type, or the int itself for a key), found once by asking the field; None where
    the column takes NULL. Any other field, or value, takes get_db_prep_save."""
    cls = type(field)
    if cls.pre_save is not Field.pre_save:
        return (), None
    nullable: tuple[type, ...] = (type(None),) if field.null else ()
    target = field.target_field if isinstance(field, ForeignKey) else field
    if target.get_internal_type() in _INTEGER_FIELDS and _standard_integer(field, target):
        wrapped = field.get_db_prep_save(1, connection)
        if type(wrapped) is int:
            return (int, *nullable), None
        if isinstance(wrapped, int) and wrapped == 1:
            return (int, *nullable), type(wrapped)
        return (), None
    if cls.get_db_prep_save is not Field.get_db_prep_save:
        return (), None
    if cls.get_db_prep_value is not Field.get_db_prep_value:
        return (), None
    if cls.get_prep_value in (CharField.get_prep_value, TextField.get_prep_value):
        return (str, *nullable), None
    if cls.get_prep_value is BooleanField.get_prep_value:
        return (bool, *nullable), None
    return (), None


_INTEGER_FIELDS = frozenset(
    {
        "AutoField",
        "BigAutoField",
        "SmallAutoField",
        "IntegerField",
        "BigIntegerField",
        "SmallIntegerField",
        "PositiveIntegerField",
        "PositiveBigIntegerField",
        "PositiveSmallIntegerField",
    }
)


def _standard_integer(field: Any, target: Any) -> bool:
    """Whether an int goes from `field` (an integer field or a foreign key to one, `target`)
    to the database through Django's own methods only, which leave it an int."""
    if field is not target and type(field).get_db_prep_save is not ForeignKey.get_db_prep_save:
        return False
    cls = type(target)
    if cls.get_db_prep_save is not Field.get_db_prep_save:
        return False
    if isinstance(target, AutoFieldMixin):
        return cls.get_db_prep_value is AutoFieldMixin.get_db_prep_value
    return (
        cls.get_db_prep_value is IntegerField.get_db_prep_value
        and cls.get_prep_value is IntegerField.get_prep_value
    )


# What orjson must leave to the field's own encoder (json.dumps, or its `encoder` class): the
# types it would write otherwise than json.dumps does (datetimes, dataclasses, subclasses of str
# or int such as Django's choices).
_ORJSON_OPTIONS = (
    orjson.OPT_PASSTHROUGH_DATETIME
    | orjson.OPT_PASSTHROUGH_DATACLASS
    | orjson.OPT_PASSTHROUGH_SUBCLASS
)


def _json_dumps(field: Any) -> Callable[[Any], Any] | None:
    """For a JSONField (on PostgreSQL a jsonb column, which keeps the parsed value, not the
    text): its value written by orjson, in a tenth of json.dumps' time, the decision's 1-2 kB
    trace included (issue 19). What orjson refuses (a type it passes through, a key that is
    not a str, an integer beyond 64 bits) is written by the field's json.dumps, as Django does.
    None for any other field."""
    if type(field) is not JSONField:
        return None
    fallback = get_json_dumps(field.encoder)

    def dumps(value: Any) -> Any:
        try:
            return orjson.dumps(value, option=_ORJSON_OPTIONS)
        except orjson.JSONEncodeError:
            return fallback(value)

    return dumps


_tables: dict[type[Model], _Table] = {}


def _table(model: type[Model], connection: Any) -> _Table:
    table = _tables.get(model)
    if table is None:
        meta = model._meta
        fields = [
            field
            for field in meta.concrete_fields
            if not (field.primary_key and field.auto_created)
            and not getattr(field, "db_returning", False)
        ]
        # A concrete field always has its column.
        quote_name = connection.ops.quote_name
        columns = ", ".join(quote_name(str(field.get_attname_column()[1])) for field in fields)
        table = _Table(
            head=f"INSERT INTO {quote_name(meta.db_table)} ({columns}) VALUES",
            fields=tuple(
                (
                    field,
                    field.is_relation,
                    *_sent_as(field, connection),
                    _json_dumps(field),
                )
                for field in fields
            ),
            returning=f"RETURNING {meta.pk.column}",
        )
        _tables[model] = table
    return table


_M = TypeVar("_M", bound=Model)


@cache
def _columns(model: type[Model]) -> dict[str, Any]:
    return {field.attname: field for field in model._meta.concrete_fields}


def new_row(model: type[_M], **values: Any) -> _M:
    """model(**values), for a row to insert: built as Django builds a row it has read
    (Model.from_db, every concrete field's value in order, the default of those not given),
    then marked unsaved. Model.__init__'s keyword path, a lookup and a descriptor per field,
    cost a decision's row about 50 µs, this about 20 (issue 19). A value is named by the
    field's attname, or by a relation's name with the related row, which is cached on the new
    one as the keyword path caches it: insert() finds a target added before it that way."""
    columns = _columns(model)
    related = []
    for name in [name for name in values if name not in columns]:
        field = model._meta.get_field(name)  # a relation's name; FieldDoesNotExist otherwise
        value = values.pop(name)
        values[field.attname] = None if value is None else value.pk  # type: ignore[union-attr]
        if value is not None:
            related.append((field, value))
    row = model.from_db(
        None,
        list(columns),
        [
            values[attname] if attname in values else field.get_default()
            for attname, field in columns.items()
        ],
    )
    row._state.adding = True
    for field, value in related:
        field.set_cached_value(row, value)  # type: ignore[union-attr]
    return row


class OneStatement:
    def __init__(self) -> None:
        self._parts: list[tuple[str, list[Any]]] = []
        self._rows: list[tuple[Model, int]] = []
        self._selected: list[tuple[int, Callable[[list[int]], None]]] = []
        # The connection itself, not django.db.connection: that proxy looks the connection up
        # (an asgiref Local) at each attribute read, about 50 times a payment in the fields'
        # get_db_prep_save alone. A statement is built and run in one thread.
        self._connection = connections[DEFAULT_DB_ALIAS]

    def __contains__(self, instance: Model) -> bool:
        return any(row is instance for row, _ in self._rows)

    def insert(self, instance: Model) -> None:
        """Insert `instance`; its primary key is set once the statement has run."""
        connection = self._connection
        table = _table(type(instance), connection)
        values, params = [], []
        for field, is_relation, as_is, wrap, dumps in table.fields:
            related = self._unsaved_target(instance, field) if is_relation else None
            if related is not None:
                values.append(f"(SELECT {related[0]._meta.pk.column} FROM w{related[1]})")
                continue
            if dumps is not None:
                value = getattr(instance, field.attname)  # Field.pre_save's
                # A dict or a list as JSONField.get_db_prep_save sends it (its get_prep_value
                # returns them as they are), but with our dumps(); anything else (None, an
                # expression) takes the field's way.
                if type(value) is dict or type(value) is list:
                    value = Jsonb(value, dumps=dumps)
                else:
                    value = field.get_db_prep_save(value, connection)
            elif as_is:
                value = getattr(instance, field.attname)  # Field.pre_save's
                if type(value) not in as_is:
                    value = field.get_db_prep_save(value, connection)
                elif wrap is not None and value is not None:
                    value = wrap(value)
            else:
                value = field.get_db_prep_save(field.pre_save(instance, add=True), connection)
            params.append(value)
            values.append("%s")
        index = len(self._parts)
        self._rows.append((instance, index))
        self._parts.append((f"{table.head} ({', '.join(values)}) {table.returning}", params))

    def _unsaved_target(self, instance: Model, field: Any) -> tuple[Model, int] | None:
        if not field.is_cached(instance):
            return None
        target = field.get_cached_value(instance)
        if target is None or target.pk is not None:
            return None
        return next((row_index for row_index in self._rows if row_index[0] is target), None)

    def sql(self, sql: str, params: Sequence[Any] = ()) -> None:
        """An UPDATE (or a DELETE) run with the others; it returns nothing."""
        self._parts.append((sql, list(params)))

    def insert_select(
        self, sql: str, params: Sequence[Any], then: Callable[[list[int]], None]
    ) -> None:
        """An INSERT ... SELECT ... RETURNING id, of any number of rows: `then` gets their ids
        once the statement has run. `{row}` in `sql` is replaced by the id of the last row
        inserted before it (e.g. the webhook event its deliveries belong to)."""
        last = self._rows[-1][1] if self._rows else None
        self._selected.append((len(self._parts), then))
        self._parts.append((sql.replace("{row}", f"(SELECT id FROM w{last})"), list(params)))

    def run(self, *, commit: bool = False) -> None:
        """Run the statement. `commit`: it is the last of its transaction, which is committed
        with it when that transaction is Django's outermost atomic block (core.prepared's
        commits_here)."""
        if not self._parts:
            return
        ctes = ", ".join(f"w{i} AS ({sql})" for i, (sql, _) in enumerate(self._parts))
        outputs = [f"(SELECT {row._meta.pk.column} FROM w{i})" for row, i in self._rows]
        outputs += [f"ARRAY(SELECT id FROM w{i})" for i, _ in self._selected]
        params = [param for _, part in self._parts for param in part]
        sql = f"WITH {ctes} SELECT {', '.join(outputs) or 'NULL'}"
        # With its COMMIT in the same message when it commits: one round trip less, with the
        # wallet's lock held, and no wait between the two (core/prepared.py, issue 19). An error
        # in either (a CHECK or unique key in the statement, a deferred foreign key at the
        # COMMIT) is raised here as Django's IntegrityError; the transaction is then rolled
        # back (by PostgreSQL, or by the atomic block's exit), as when Django committed.
        with prepared_cursor() as cursor:
            cursor.execute(sql, params, commit=commit and commits_here(self._connection))
            results = cursor.fetchone()
        assert results is not None  # the statement's SELECT returns one row
        for (row, _), pk in zip(self._rows, results, strict=False):
            row.pk = pk
            row._state.adding = False
            row._state.db = self._connection.alias
        for (_, then), ids in zip(self._selected, results[len(self._rows) :], strict=True):
            then(list(ids))
