"""A step's hot writes as statements written once, run with the cursor's parameters.

Each step inserts its next step and its events and updates its own row and
its run's. Through the ORM each of those builds, clones and compiles a
query every time (~0.25 ms of the worker's CPU per statement on SQLite,
more on PostgreSQL: most of the engine's share of a no-op step). These are
the same statements, written once per model, column list and database from
the model's metadata with the backend's quoting: each value still goes
through its field's own `pre_save` and `get_db_prep_save` (what the ORM
would bind), and a model with signal receivers goes through the ORM
instead, so nothing that listens misses a save. The statements are plain
SQL both backends run the same (`INSERT … RETURNING` since SQLite 3.35).
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, TypeVar

from django.db import DatabaseError, connections, models, router
from django.db.models import signals
from django.db.transaction import TransactionManagementError

if TYPE_CHECKING:
    Field = models.Field[Any, Any]

__all__ = ["insert", "lock", "save_fields", "update", "usable"]

M = TypeVar("M", bound=models.Model)

# Where a statement runs as written here; anywhere else the ORM writes.
VENDORS = frozenset({"sqlite", "postgresql"})


def _quiet(model: type[models.Model]) -> bool:
    """Whether no receiver would hear a save of `model` (so the ORM is not needed)."""
    return not (signals.pre_save.has_listeners(model) or signals.post_save.has_listeners(model))


def usable(model: type[models.Model], alias: str) -> bool:
    """Whether `model`'s rows may be written here on database `alias`."""
    connection = connections[alias]
    return (
        connection.vendor in VENDORS
        and connection.features.can_return_columns_from_insert
        and _quiet(model)
    )


@functools.cache
def _fields(model: type[models.Model], names: tuple[str, ...]) -> tuple[Field, ...]:
    return tuple(model._meta.get_field(name) for name in names)  # type: ignore[misc]


# Keyed by the number of rows too: a step stages a few events, but a long
# stay or a fork can stage many at once, and each count is its own statement.
@functools.lru_cache(maxsize=64)
def _insert_sql(
    model: type[models.Model], alias: str, vendor: str, rows: int
) -> tuple[str, tuple[Field, ...]]:
    """INSERT of `rows` rows of every concrete column but the primary key, RETURNING it."""
    quote = connections[alias].ops.quote_name
    meta = model._meta
    fields = tuple(f for f in meta.concrete_fields if not f.primary_key and not f.generated)
    row = "(" + ", ".join(["%s"] * len(fields)) + ")"
    sql = (
        f"INSERT INTO {quote(meta.db_table)} ({', '.join(quote(str(f.column)) for f in fields)}) "
        f"VALUES {', '.join([row] * rows)} RETURNING {quote(str(meta.pk.column))}"
    )
    return sql, fields


def _insert_statement(objs: Sequence[models.Model], alias: str) -> tuple[str, list[Any]]:
    connection = connections[alias]
    sql, fields = _insert_sql(type(objs[0]), alias, connection.vendor, len(objs))
    params: list[Any] = []
    for obj in objs:
        params += [f.get_db_prep_save(f.pre_save(obj, True), connection) for f in fields]
    return sql, params


def _inserted(objs: Sequence[models.Model], keys: list[Any], alias: str) -> None:
    if len(keys) != len(objs):
        raise DatabaseError(f"inserted {len(keys)} rows of {len(objs)}")
    for obj, (key,) in zip(objs, keys, strict=True):
        obj.pk = key
        obj._state.adding = False
        obj._state.db = alias


def insert(objs: Sequence[models.Model], *, using: str | None = None) -> None:
    """Insert new instances of one model in one statement; set their keys and state.

    What `Model.save(force_insert=True)` and `bulk_create` do for a model
    without receivers, parents or key given: each field's `pre_save` (as
    adding) and `get_db_prep_save`. The keys come back in the rows' order
    (as Django's own `bulk_create` relies on).
    """
    if not objs:
        return
    alias = using or router.db_for_write(type(objs[0]))
    sql, params = _insert_statement(objs, alias)
    with connections[alias].cursor() as cursor:
        cursor.execute(sql, params)
        keys = cursor.fetchall()
    _inserted(objs, keys, alias)


@functools.cache
def _update_sql(
    model: type[models.Model],
    alias: str,
    vendor: str,
    names: tuple[str, ...],
    where: tuple[str, ...],
) -> str:
    quote = connections[alias].ops.quote_name
    sets = ", ".join(f"{quote(str(f.column))} = %s" for f in _fields(model, names))
    tests = " AND ".join(f"{quote(str(f.column))} = %s" for f in _fields(model, where))
    return f"UPDATE {quote(model._meta.db_table)} SET {sets} WHERE {tests}"


def _update_statement(
    model: type[models.Model], values: dict[str, Any], where: dict[str, Any], alias: str
) -> tuple[str, list[Any]]:
    connection = connections[alias]
    names, tested = tuple(values), tuple(where)
    sql = _update_sql(model, alias, connection.vendor, names, tested)
    params = [
        f.get_db_prep_save(v, connection)
        for f, v in zip(_fields(model, names), values.values(), strict=True)
    ]
    for f, v in zip(_fields(model, tested), where.values(), strict=True):
        if v is None:
            raise ValueError(f"{f.name} is None: not an equality")
        params.append(f.get_db_prep_value(v, connection))
    return sql, params


def update(
    model: type[models.Model],
    values: dict[str, Any],
    where: dict[str, Any],
    *,
    using: str | None = None,
) -> int:
    """`model.objects.filter(**where).update(**values)` for plain equalities; rows changed.

    `where`'s names are fields (the primary key by its name); none is None.
    """
    alias = using or router.db_for_write(model)
    sql, params = _update_statement(model, values, where, alias)
    with connections[alias].cursor() as cursor:
        cursor.execute(sql, params)
        return int(cursor.rowcount)


def save_fields(
    obj: models.Model,
    names: tuple[str, ...],
    *,
    using: str | None = None,
    inserting: Sequence[models.Model] = (),
) -> None:
    """`obj.save(update_fields=names)` for a saved instance of a model without receivers.

    Each field's `pre_save` (an `auto_now` field takes the time) and the
    ORM's refusal when no row was found. The new rows `inserting` (one
    model's) are inserted first, as `insert` would: on PostgreSQL in the
    same round trip (psycopg's client-side cursor, Django's default, sends
    both statements in one message; they run in order, in the transaction,
    and an error in either fails the call).
    """
    model = type(obj)
    alias = using or obj._state.db or router.db_for_write(model)
    connection = connections[alias]
    values = {f.name: f.pre_save(obj, False) for f in _fields(model, names)}
    sql, params = _update_statement(model, values, {model._meta.pk.name: obj.pk}, alias)
    if inserting and _one_message(connection):
        first, before = _insert_statement(inserting, alias)
        with connection.cursor() as cursor:
            cursor.execute(f"{first}; {sql}", before + params)
            keys = cursor.fetchall()
            if not cursor.nextset():
                raise DatabaseError("the UPDATE sent with the INSERT gave no result")
            rows = int(cursor.rowcount)
        _inserted(inserting, keys, alias)
    else:
        insert(inserting, using=alias)
        with connection.cursor() as cursor:
            cursor.execute(sql, params)
            rows = int(cursor.rowcount)
    if rows < 1:
        raise DatabaseError("Save with update_fields did not affect any rows.")
    obj._state.db = alias


def _one_message(connection: Any) -> bool:
    """Whether two statements may go in one query: psycopg's client-side binding.

    With ``OPTIONS["server_side_binding"]`` psycopg prepares each query on
    the server, which refuses more than one statement in it.
    """
    return connection.vendor == "postgresql" and not connection.settings_dict.get(
        "OPTIONS", {}
    ).get("server_side_binding")


@functools.cache
def _lock_sql(
    model: type[models.Model], alias: str, vendor: str, omit: tuple[str, ...]
) -> tuple[str, tuple[str, ...], tuple[tuple[Any, list[Any]], ...]]:
    """The row's SELECT … FOR UPDATE by key, the names it reads, each column's converters."""
    connection = connections[alias]
    quote = connection.ops.quote_name
    meta = model._meta
    table = quote(meta.db_table)
    fields = tuple(f for f in meta.concrete_fields if f.name not in omit)
    columns = ", ".join(f"{table}.{quote(str(f.column))}" for f in fields)
    # SQLite has no row locks: its writers are serialised by IMMEDIATE transactions.
    lock = " FOR UPDATE" if connection.features.has_select_for_update else ""
    sql = f"SELECT {columns} FROM {table} WHERE {table}.{quote(str(meta.pk.column))} = %s{lock}"
    converters = []
    for f in fields:
        column = f.get_col(meta.db_table)
        converters.append(
            (column, connection.ops.get_db_converters(column) + f.get_db_converters(connection))
        )
    return sql, tuple(f.attname for f in fields), tuple(converters)


def lock(
    model: type[M], pk: Any, *, omit: tuple[str, ...] = (), using: str | None = None
) -> M | None:
    """`model.objects.select_for_update().defer(*omit).filter(pk=pk).first()`, written once.

    The row converted as the ORM converts it (each column's backend and
    field converters) and made an instance by `Model.from_db`, `omit`
    deferred; None when there is no such row.
    """
    alias = using or router.db_for_write(model)
    connection = connections[alias]
    if not connection.in_atomic_block:
        raise TransactionManagementError("a row lock outside a transaction holds nothing")
    sql, names, converters = _lock_sql(model, alias, connection.vendor, omit)
    key = model._meta.pk.get_db_prep_value(pk, connection)
    with connection.cursor() as cursor:
        cursor.execute(sql, [key])
        row = cursor.fetchone()
    if row is None:
        return None
    values = []
    for value, (column, convert) in zip(row, converters, strict=True):
        for converter in convert:
            value = converter(value, column, connection)
        values.append(value)
    return model.from_db(alias, names, values)
