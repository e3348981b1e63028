"""Multi-row INSERTs for batches of rows (the capture pipeline's, the audit log's).

Generic (Django and the database only, no models of ours): it lives in `core`, below every app,
so governance/audit.py and the capture pipeline use the same code.

`insert_skipping_conflicts` inserts rows that may conflict on a unique key and says which ones
won (`QuerySet.bulk_create(ignore_conflicts=True)` cannot tell, and one `save()` per row in a
savepoint costs three round trips a row). `bulk_insert` is `bulk_create` for the batch's other
rows.

On PostgreSQL both send `INSERT ... SELECT * FROM unnest(...)` with one array per column, as
Django 5.2's `bulk_create` does, but bound server-side in binary. Django binds client-side
(psycopg's default): every value is then quoted into an array literal by psycopg's Python
array code and parsed back by PostgreSQL's array parser, which for a batch of 50 emails with
~25 KB of bodies each cost ~1 ms of CPU a message, against ~0.45 ms in binary (client and
server; bench/ingest.py). A multi-row VALUES list bound server-side is no better: psycopg
parses long statements for placeholders in Python, uncached. Elsewhere (SQLite: tests, the
embedded mode) Django's own statements are used.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from datetime import UTC, date, datetime
from enum import Enum
from typing import Any, TypeVar

from django.db import DEFAULT_DB_ALIAS, connections, models, router
from django.db.models import AutoField, Model
from django.db.models.base import ModelState
from django.db.models.constants import OnConflict
from django.db.models.fields.related_descriptors import ForeignKeyDeferredAttribute
from django.db.models.query_utils import DeferredAttribute
from django.db.models.signals import post_init, pre_init
from django.db.models.sql import InsertQuery
from django.utils import timezone
from django.utils.functional import Promise

M = TypeVar("M", bound=Model)


def insert_skipping_conflicts(model: type[Model], objs: Sequence[Model], key: str) -> set[Any]:
    """Insert `objs`; winners get their pk set. Returns the `key` values that were not inserted.

    Rows are inserted in `key` order, so two transactions inserting overlapping batches take
    the unique index's locks in the same order and cannot deadlock on each other.
    """
    if not objs:
        return set()
    opts = model._meta
    key_field = opts.get_field(key)
    db = router.db_for_write(model)
    conn = connections[db]
    if not conn.features.can_return_rows_from_bulk_insert:  # pragma: no cover - PG and SQLite can
        raise NotImplementedError(f"{conn.vendor} cannot return rows from a bulk insert")
    ordered = sorted(objs, key=lambda o: getattr(o, key_field.attname))
    prepare_related_fields(ordered)
    rows = None
    if _arrays_possible(model, ordered, conn):
        try:
            rows = _pg_insert(model, ordered, db, ignore_conflicts=True, returning=key_field)
        except _NotPlain:
            rows = None
    if rows is None:
        rows = []
        fields = [f for f in opts.concrete_fields if f is not opts.pk and not f.generated]
        size = max(1, conn.ops.bulk_batch_size(fields, ordered))
        for start in range(0, len(ordered), size):
            query = InsertQuery(model, on_conflict=OnConflict.IGNORE)
            query.insert_values(fields, ordered[start : start + size])
            compiler = query.get_compiler(using=db)
            compiler.returning_fields = [opts.pk, key_field]
            with conn.cursor() as cursor:
                for sql, params in compiler.as_sql():
                    cursor.execute(sql, params)
                    rows.extend(cursor.fetchall())
    won = {k: pk for pk, k in rows}
    lost = set()
    for obj in ordered:
        value = getattr(obj, key_field.attname)
        if value in won:
            obj.pk = won[value]
            obj._state.adding = False
            obj._state.db = db
        else:
            lost.add(value)
    return lost


def bulk_insert(
    model: type[Model],
    objs: Sequence[Model],
    *,
    ignore_conflicts: bool = False,
    batch_size: int | None = None,
) -> None:
    """`model.objects.bulk_create(objs, ...)`, cheaper on PostgreSQL (see the module docstring).

    Without ignore_conflicts the objects get their primary keys, as with bulk_create.
    """
    objs = list(objs)
    if not objs:
        return
    db = router.db_for_write(model)
    conn = connections[db]
    rows = None
    if _arrays_possible(model, objs, conn):
        prepare_related_fields(objs)
        try:
            rows = _pg_insert(
                model,
                objs,
                db,
                ignore_conflicts=ignore_conflicts,
                returning=None,
                batch_size=batch_size,
            )
        except _NotPlain:
            rows = None
    if rows is None:
        model._default_manager.bulk_create(
            objs, batch_size=batch_size, ignore_conflicts=ignore_conflicts
        )
        return
    if not ignore_conflicts:
        for obj, (pk,) in zip(objs, rows, strict=True):
            obj.pk = pk
    for obj in objs:
        obj._state.adding = False
        obj._state.db = db


def prepare_related_fields(objs: Sequence[Model], operation_name: str = "bulk_create") -> None:
    """`obj._prepare_related_fields_for_save(operation_name)` for each object, cheaper.

    Django's method walks every concrete field of every object; what it does is only for a
    relation whose object is cached: a ValueError if that object has no pk, its pk copied into
    the relation's attname when that is empty (`setattr(obj, name, related)`), the cache
    dropped when the two disagree; then a check of each GenericForeignKey. Here a per-model
    list of the foreign keys and one-to-ones does the same for the objects with a cache, and
    anything else takes Django's method: an unsaved related object (for its error and side
    effects: the method is idempotent, so rerunning it after the fields already done is the
    same), a model with private fields, other relation fields, deferred attnames, database
    routers or overridden descriptors (the assignment). tests/capture/pipeline/
    test_bulk_prepare.py compares both.
    """
    specs: dict[type, Any] = {}
    slow = bool(router.routers)  # the assignment asks the routers
    for obj in objs:
        cls = type(obj)
        spec = specs.get(cls)
        if spec is None:
            spec = _prepare_specs.get(cls)
            if spec is None:
                spec = _prepare_specs[cls] = _prepare_spec(cls)
            specs[cls] = spec
        if spec is _SLOW or slow:
            obj._prepare_related_fields_for_save(operation_name=operation_name)
            continue
        cache = obj._state.fields_cache
        if cache and not _prepare_fast(obj, cache, spec):
            obj._prepare_related_fields_for_save(operation_name=operation_name)


def _prepare_fast(obj: Model, cache: dict, spec) -> bool:
    """Django's loop over `spec`'s relations for one object; False: let Django's method
    (re)do it (an unsaved related object, anything unusual)."""
    d = obj.__dict__
    for cache_name, attname, empty_values, target, target_attname, reverse_cache_name in spec:
        if cache_name not in cache:
            continue
        related = cache[cache_name]  # what the descriptor returns (None if unset)
        if not related:
            continue
        if type(related) is not target:
            return False  # a subclass, a proxy: its own pk attname, Django's method
        rd = related.__dict__
        pk = rd.get(target_attname, _MISSING)
        if pk is None or pk is _MISSING or isinstance(pk, tuple):
            return False  # unsaved (Django raises), deferred, composite
        value = d.get(attname, _MISSING)
        if value is _MISSING:
            return False
        if value is None or (type(value) is not int and value in empty_values):
            # setattr(obj, name, related), as the descriptor does it without routers.
            related_state = related._state
            if not _share_database(obj._state, related_state):
                return False  # the descriptor refuses the relation
            d[attname] = value = pk
            del cache[cache_name]  # as ForeignKeyDeferredAttribute.__set__, then set again
            cache[cache_name] = related
            if reverse_cache_name is not None:
                related_state.fields_cache[reverse_cache_name] = obj
        if pk != value:
            del cache[cache_name]
    return True


def _share_database(state: ModelState, related_state: ModelState) -> bool:
    """The database states a foreign key's descriptor sets on assignment without routers: the
    object takes the related object's (or the default), an unsaved related object the
    object's. False when they differ: the descriptor refuses the relation."""
    if state.db is None:
        state.db = related_state.db or DEFAULT_DB_ALIAS
    if related_state.db is None:
        related_state.db = state.db
    return related_state.db == state.db


_prepare_specs: dict[type, Any] = {}


def _prepare_spec(model: type[Model]):
    """[(cache name, attname, empty values, target model, target pk attname, reverse cache
    name or None)] per foreign key and one-to-one of `model`, or _SLOW."""
    opts = model._meta
    if (
        opts.private_fields
        or model._prepare_related_fields_for_save is not Model._prepare_related_fields_for_save
        or model.__setattr__ is not object.__setattr__
    ):
        return _SLOW
    spec = []
    for field in opts.concrete_fields:
        if not field.is_relation:
            continue
        if type(field) not in (models.ForeignKey, models.OneToOneField):
            return _SLOW
        if field.primary_key or len(field.related_fields) != 1:
            return _SLOW  # multi-table inheritance, composite keys: Django's method
        if type(getattr(model, field.name, None)) is not field.forward_related_accessor_class:
            return _SLOW
        if type(getattr(model, field.attname, None)) is not ForeignKeyDeferredAttribute:
            return _SLOW
        remote = field.remote_field
        target = remote.model._meta.concrete_model
        pk = target._meta.pk
        if (
            field.target_field is not pk
            or field.related_fields[0][1] is not pk
            or type(getattr(target, pk.attname, None)) is not DeferredAttribute
            or target._is_pk_set is not Model._is_pk_set
            or target._get_pk_val is not Model._get_pk_val
        ):
            return _SLOW  # a to_field, an unusual pk: not what _prepare_fast reads
        spec.append(
            (
                field.cache_name,
                field.attname,
                field.empty_values,
                target,
                pk.attname,
                None if remote.multiple else remote.cache_name,
            )
        )
    return tuple(spec)


def _arrays_possible(model: type[Model], objs: Sequence[Model], conn) -> bool:
    """PostgreSQL, one table, an auto-increment key the database assigns to every row, or
    one the caller drew from its sequence for every row (see _pg_insert)."""
    return (
        conn.vendor == "postgresql"
        and not model._meta.parents
        and isinstance(model._meta.pk, AutoField)
        and len({o.pk is None for o in objs}) == 1
    )


def execute_binary(sql: str, params, *, fetch: bool = False, using: str = "default") -> list:
    """Run one statement on PostgreSQL with its parameters bound server-side (``%b``: binary).

    Through Django's cursor wrapper (errors, query logging, execute wrappers), never as a
    prepared statement. Returns the rows when `fetch`, else [].
    """
    global _cursor_class
    conn = connections[using]
    if _cursor_class is None:
        _cursor_class = _server_binding_cursor_class()
    conn.ensure_connection()
    with conn._prepare_cursor(_cursor_class(conn.connection)) as cursor:
        cursor.execute(sql, params)
        return cursor.fetchall() if fetch else []


def _server_binding_cursor_class():
    from django.db.backends.postgresql.base import ServerBindingCursor

    class OneShotServerBindingCursor(ServerBindingCursor):
        """Parameters bound server-side, never as a prepared statement (transaction poolers
        drop prepared statements; the pipeline's statements are few per batch anyway)."""

        def execute(self, query, params=None, *, prepare=None, binary=None):
            return super().execute(query, params, prepare=False, binary=binary)

    return OneShotServerBindingCursor


_cursor_class = None


def _pg_insert(
    model: type[Model],
    objs: list[Model],
    db: str,
    *,
    ignore_conflicts: bool,
    returning,
    batch_size: int | None = None,
) -> list[tuple]:
    """INSERT ... SELECT * FROM unnest(one binary array per column) for pk-less objects, or
    for objects that all have their pk (taken from the key's sequence by the caller).

    Returns (pk,) or (pk, returning) per row inserted (nothing with ignore_conflicts and no
    `returning`), in the objects' order (as Django's own UNNEST insert relies on).
    """
    conn = connections[db]
    opts = model._meta
    with_pk = objs[0].pk is not None
    fields = [
        f
        for f in opts.concrete_fields
        if not f.generated and (with_pk or not isinstance(f, AutoField))
    ]
    qn = conn.ops.quote_name
    # As Django's UNNEST insert: no type modifiers (varchar[], not varchar(50)[]).
    arrays = ", ".join(f"%b::{f.db_type(conn).split('(')[0]}[]" for f in fields)
    sql = (
        f"INSERT INTO {qn(opts.db_table)} ({', '.join(qn(f.column) for f in fields)})"  # noqa: S608
        f" SELECT * FROM unnest({arrays})"
    )
    if ignore_conflicts:
        sql += " ON CONFLICT DO NOTHING"
    want_rows = returning is not None or not ignore_conflicts
    if want_rows:
        sql += " RETURNING " + qn(opts.pk.column)
        if returning is not None:
            sql += ", " + qn(returning.column)
    size = batch_size or len(objs)
    # Every chunk's arrays are built before the first statement, so a value that cannot go in
    # an array (_NotPlain) makes the caller fall back to Django with nothing written yet.
    chunks = [_columns(objs[i : i + size], fields, conn) for i in range(0, len(objs), size)]
    out: list[tuple] = []
    for columns in chunks:
        out.extend(execute_binary(sql, columns, fetch=want_rows, using=db))
    if not ignore_conflicts and len(out) != len(objs):  # pragma: no cover - a broken invariant
        raise RuntimeError(f"inserted {len(objs)} rows, got {len(out)} back")
    return out


class _NotPlain(Exception):
    """A field holds an expression or a list (an array column): no array per column then."""


def _columns(objs: list[Model], fields, conn) -> list[list[Any]]:
    """One list of database values per field: `f.get_db_prep_save(f.pre_save(obj, True))`.

    Most of a batch's values are plain str/int/bool in fields whose pre_save and
    get_db_prep_save return them unchanged, or for integers wrapped in the backend's integer
    type (psycopg's Int4/Int8), None (NULL), aware datetimes (unchanged on PostgreSQL), dicts
    and lists in a JSONField (wrapped as Django's PostgreSQL backend wraps them, in psycopg's
    Jsonb with Django's dumps): see _plain_conversion. Those are converted directly, which
    halves the cost of the pipeline's inserts (~52,000 values per 600 messages went through
    Django's per-field methods). An auto_now/auto_now_add timestamp is set as its pre_save
    sets it, with one timezone.now() per chunk (see _NOW). Anything else takes Django's path.
    tests/core/db/test_bulk_columns.py compares both on the rows the pipeline inserts.
    """
    columns: list[list[Any]] = [[] for _ in fields]
    for column, f in zip(columns, fields, strict=True):
        kind, plain, convert, none_ok = _plain_conversion(f, conn)
        attname = f.attname
        append = column.append
        if kind is _NOW:
            # pre_save(obj, add=True) is `value = timezone.now(); setattr(obj, attname, value)`;
            # Django's bulk_create calls it once per row, microseconds apart: one instant for
            # the chunk's rows here. Only what get_db_prep_save passes unchanged (aware).
            now = timezone.now()
            if type(now) is datetime and now.utcoffset() is not None:
                for obj in objs:
                    setattr(obj, attname, now)
                column.extend([now] * len(objs))
                continue
            kind = None
        if kind is None:
            for obj in objs:
                append(_db_value(obj, f, conn))
            continue
        str_plain = str in plain and convert is None
        for obj in objs:
            value = obj.__dict__.get(attname, _MISSING)
            t = type(value)
            if t in plain:
                if kind is _AWARE and value.utcoffset() is None:
                    append(_db_value(obj, f, conn))  # naive: Django warns and makes it aware
                else:
                    append(value if convert is None else convert(value))
            elif value is None and none_ok:
                append(None)
            elif str_plain and _is_str_choice(t):
                plain.add(t)  # a TextChoices member: stored as it is, like a str
                append(value)
            else:
                append(_db_value(obj, f, conn))
    return columns


def _columns_reference(objs: list[Model], fields, conn) -> list[list[Any]]:
    """Django's own path for every value (what _columns must equal)."""
    return [[_db_value(obj, f, conn) for obj in objs] for f in fields]


def _db_value(obj: Model, f, conn) -> Any:
    value = f.pre_save(obj, True)
    if hasattr(value, "resolve_expression") or (
        isinstance(value, (list, tuple)) and f.get_internal_type() != "JSONField"
    ):
        raise _NotPlain(f.name)
    return f.get_db_prep_save(value, connection=conn)


_MISSING = object()
# Kinds of fast path: the value as it is (or converted), an aware datetime as it is, the
# auto_now/auto_now_add timestamp.
_PLAIN, _AWARE, _NOW = "plain", "aware", "now"
# Exact field classes whose pre_save returns the attribute and whose get_db_prep_save maps a
# value of this exact type by a pure function (a subclass may override either).
_PLAIN_BY_CLASS: dict[type, type] = {
    models.CharField: str,
    models.TextField: str,
    models.EmailField: str,
    models.IntegerField: int,
    models.BigIntegerField: int,
    models.SmallIntegerField: int,
    models.PositiveIntegerField: int,
    models.PositiveBigIntegerField: int,
    models.PositiveSmallIntegerField: int,
    models.BooleanField: bool,
    models.AutoField: int,
    models.BigAutoField: int,
    models.SmallAutoField: int,
    models.DateField: date,
    models.DateTimeField: datetime,
    models.JSONField: dict,
}
_SAMPLES: dict[type, Any] = {
    str: "x",
    int: 7,
    bool: True,
    date: date(2026, 3, 2),
    datetime: datetime(2026, 3, 2, 10, 0, tzinfo=UTC),
}
_conversions: dict[tuple[str, int], tuple[str | None, set, Any, bool]] = {}


def _plain_conversion(f, conn) -> tuple[str | None, set, Any, bool]:
    """(kind, the value types field `f` takes directly, the conversion or None for none,
    whether None is stored as NULL unchanged), kind None when only Django's path will do.
    A foreign key to an integer primary key stores its target's integer.

    What Django makes of a sample value of each type decides, once per field and connection:
    the same value (str, bool, date; int on most backends; an aware datetime on PostgreSQL),
    the same integer in the driver's integer class (psycopg 3: Int2/Int4/Int8), a JSON dict
    in the driver's JSON wrapper (psycopg's Jsonb) with Django's dumps, or anything else (a
    string on SQLite): Django's path.
    """
    key = (conn.alias, id(f))
    found = _conversions.get(key)
    if found is not None:
        return found
    found = _conversions[key] = _conversion(f, conn)
    return found


def _conversion(f, conn) -> tuple[str | None, set, Any, bool]:
    cls = type(f)
    if cls in (models.ForeignKey, models.OneToOneField):
        target = type(f.target_field)
        plain = int if target in (models.AutoField, models.BigAutoField) else None
    else:
        plain = _PLAIN_BY_CLASS.get(cls)
    if plain is None:
        return None, set(), None, False
    none_ok = f.get_db_prep_save(None, connection=conn) is None
    kind, plains, convert = _PLAIN, {plain}, None
    if plain is dict:
        # JSONField: get_db_prep_value(v) = connection.ops.adapt_json_value(v, f.encoder); on
        # PostgreSQL Jsonb(v, dumps=get_json_dumps(encoder)), one dumps function per encoder.
        sample: Any = {"k": [1, "x"]}
        made = f.get_db_prep_save(sample, connection=conn)
        if f.encoder is not None or _Jsonb is None or type(made) is not _Jsonb:
            return None, set(), None, none_ok
        if made.obj is not sample:
            return None, set(), None, none_ok
        dumps = made.dumps

        def convert(value, _wrap=_Jsonb, _dumps=dumps):
            return _wrap(value, dumps=_dumps)

        return _PLAIN, {dict, list}, convert, none_ok
    if f.get_internal_type() in ("DateField", "DateTimeField") and (f.auto_now or f.auto_now_add):
        if plain is date:
            return None, set(), None, False  # date.today(): rare, Django's path
        kind = _NOW
    elif plain is datetime:
        kind = _AWARE
    sample = _SAMPLES[plain]
    try:
        made = f.get_db_prep_save(sample, connection=conn)
    except Exception:  # e.g. an aware datetime on a backend that refuses it (MySQL without USE_TZ)
        return None, set(), None, none_ok
    if plain in (date, datetime):
        if made is not sample:
            return None, set(), None, none_ok
    elif type(made) is plain and made == sample:
        convert = None
    elif plain is int and isinstance(made, int) and made == sample:
        convert = type(made)
    else:
        return None, set(), None, none_ok
    return kind, plains, convert, none_ok


_str_choices: dict[type, bool] = {}


def _is_str_choice(t: type) -> bool:
    """A str enum (TextChoices): CharField/TextField's get_prep_value (to_python) returns any
    str as it is, so Django stores the member itself; not a lazy string nor an expression."""
    found = _str_choices.get(t)
    if found is None:
        found = _str_choices[t] = (
            issubclass(t, str)
            and issubclass(t, Enum)
            and not issubclass(t, Promise)
            and not hasattr(t, "resolve_expression")
            and not hasattr(t, "as_sql")
        )
    return found


try:
    from django.db.backends.postgresql.psycopg_any import Jsonb as _Jsonb
except ImportError:  # pragma: no cover - without psycopg (SQLite only)
    _Jsonb = None


def new_row(model: type[M], **values: Any) -> M:
    """`model(**values)` for the rows a batch builds by the thousand, at a fraction of the cost.

    Django's `Model.__init__` sends two signals and walks every field, setting each through
    its descriptor; this copies a per-model template of the defaults into the instance's
    `__dict__` and sets the given values, which is what `__init__` ends up doing for plain
    fields (their descriptors only read). A foreign key given as an instance gets what its
    descriptor does without routers: the type check, the state's database, the id, the cached
    object (and for a one-to-one the reverse cache); `_prepare_related_fields_for_save` later
    copies the pk of an object saved after the assignment. Models with init signals, database
    routers, values for properties or unknown names take `model(**values)`.
    tests/core/db/test_new_row.py compares both on the pipeline's models.
    """
    spec = _row_specs.get(model)
    if spec is None:
        spec = _row_specs[model] = _row_spec(model)
    if spec is _SLOW or not spec[3].issuperset(values):
        return model(**values)
    static, dynamic, relations, _names = spec
    obj = model.__new__(model)
    state = obj._state = ModelState()
    d = obj.__dict__
    d.update(static)
    for attname, default in dynamic:
        d[attname] = default()
    for name, value in values.items():
        rel = relations.get(name)
        if rel is None:
            d[name] = value
            continue
        attname, target, target_attname, cache_name, reverse_cache_name = rel
        if value is None:
            d[attname] = None
        else:
            if not isinstance(value, target):
                setattr(obj, name, value)  # raises the descriptor's ValueError
            value_state = value._state
            if not _share_database(state, value_state):
                setattr(obj, name, value)  # the descriptor refuses the relation
            d[attname] = getattr(value, target_attname)
            if reverse_cache_name is not None:
                value_state.fields_cache[reverse_cache_name] = obj
        state.fields_cache[cache_name] = value
    return obj


_SLOW = object()
_row_specs: dict[type, Any] = {}


def _row_spec(model: type[Model]):
    """(static defaults by attname, [(attname, default factory)], {relation name: (attname,
    target model, target attname, cache name, reverse cache name or None)}, every name
    `new_row` accepts) or _SLOW."""
    if pre_init.has_listeners(model) or post_init.has_listeners(model) or router.routers:
        return _SLOW
    static: dict[str, Any] = {}
    dynamic: list[tuple[str, Any]] = []
    relations: dict[str, tuple] = {}
    names: set[str] = set()
    for field in model._meta.concrete_fields:
        if field.generated:
            return _SLOW
        if field.is_relation:
            if type(field) not in (models.ForeignKey, models.OneToOneField):
                return _SLOW
            if field.primary_key or len(field.related_fields) != 1:
                return _SLOW  # multi-table inheritance, composite keys: the descriptor's job
            remote = field.remote_field
            relations[field.name] = (
                field.attname,
                remote.model._meta.concrete_model,
                field.related_fields[0][1].attname,
                field.cache_name,
                None if remote.multiple else remote.cache_name,
            )
            names.add(field.name)
        elif field.attname != field.name:
            return _SLOW
        names.add(field.attname)
        if field.has_default() and callable(field.default):
            dynamic.append((field.attname, field.get_default))
        else:
            static[field.attname] = field.get_default()
    return static, dynamic, relations, frozenset(names)


# --- statements with id lists bound as arrays, on any backend ------------------------------

_ANY_ARRAY = re.compile(r"=\s*ANY\(%b::[^\[]+\[\]\)")
_UNNEST_ARRAY = re.compile(r"unnest\(%b::[^\[]+\[\]\)\s+AS\s+(\w+)\(value\)")


def execute_arrays(sql: str, params: Sequence[Any], *, fetch: bool = False, using: str = "default"):
    """Run a statement whose lists are bound as one array each, on PostgreSQL or SQLite.

    Written for PostgreSQL: ``col = ANY(%b::bigint[])`` and ``unnest(%b::text[]) AS x(value)``
    with a Python list as the parameter, other parameters as ``%b``. On PostgreSQL it runs as
    written through `execute_binary` (one array parameter instead of an ``IN (...)`` list of
    thousands, which psycopg splits in Python and the server parses per value). Elsewhere
    (SQLite: `make run`, the local suite) each array becomes ``IN (SELECT value FROM
    json_each(%s))`` / ``json_each(%s) AS x`` with the list sent as one JSON text, so the same
    statement works without a parameter per id (SQLite's limit is 32,766)."""
    conn = connections[using]
    if conn.vendor == "postgresql":
        sql, params = _int_arrays_as_text(sql, params)
        return execute_binary(sql, params, fetch=fetch, using=using)
    sql = _ANY_ARRAY.sub("IN (SELECT value FROM json_each(%s))", sql)
    sql = _UNNEST_ARRAY.sub(r"json_each(%s) AS \1", sql).replace("%b", "%s")
    if "::" in sql:
        raise ValueError(f"a PostgreSQL cast left in a portable statement: {sql[:200]}")
    params = [json.dumps(list(p)) if isinstance(p, list | tuple) else p for p in params]
    with conn.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.fetchall() if fetch else []


_BIGINT_ARRAY = re.compile(r"%b(::bigint\[\])?")


def _int_arrays_as_text(sql: str, params: Sequence[Any]) -> tuple[str, list[Any]]:
    """Lists of ints bound to ``%b::bigint[]`` go as one text literal (``%t``, ``{1,2,3}``):
    psycopg dumps an array parameter element by element in Python (~1 ms for 1,000 ids),
    where joining their digits costs a tenth of that and the server parses the literal in C."""
    out = list(params)
    index = -1

    def one(m: re.Match) -> str:
        nonlocal index
        index += 1
        value = out[index]
        if m.group(1) and isinstance(value, list | tuple):
            try:
                out[index] = "{" + ",".join(map(str, map(int, value))) + "}"
            except (TypeError, ValueError):
                return m.group(0)
            return "%t::bigint[]"
        return m.group(0)

    return _BIGINT_ARRAY.sub(one, sql), out
