"""Migration operations shared by the apps' migrations (kept stable: migrations import them)."""

from __future__ import annotations

from django.db import migrations


class PostgresSQLElseOperations(migrations.SeparateDatabaseAndState):
    """`operations` change the state everywhere, and the database everywhere but PostgreSQL;
    on PostgreSQL `sql` (forwards) / `reverse_sql` (backwards) change the database instead.

    For index changes Django would make by rebuilding (a rename it cannot express, a dropped
    `_like` twin): on PostgreSQL the statements only drop and rename, catalog changes that build
    nothing. Undoing `sql[i]` is `reverse_sql[i]`; they run backwards."""

    def __init__(self, operations, sql, reverse_sql):
        super().__init__(database_operations=operations, state_operations=operations)
        self.operations, self.sql, self.reverse_sql = operations, sql, reverse_sql

    def deconstruct(self):
        kwargs = {"operations": self.operations, "sql": self.sql, "reverse_sql": self.reverse_sql}
        return self.__class__.__qualname__, [], kwargs

    def database_forwards(self, app_label, schema_editor, from_state, to_state):
        if schema_editor.connection.vendor != "postgresql":
            return super().database_forwards(app_label, schema_editor, from_state, to_state)
        for statement in self.sql:
            schema_editor.execute(statement)

    def database_backwards(self, app_label, schema_editor, from_state, to_state):
        if schema_editor.connection.vendor != "postgresql":
            return super().database_backwards(app_label, schema_editor, from_state, to_state)
        for statement in reversed(self.reverse_sql):
            schema_editor.execute(statement)

    def describe(self):
        return "Drop unused indexes: " + "; ".join(op.describe() for op in self.operations)
