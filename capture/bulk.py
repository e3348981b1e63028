"""The pipeline's multi-row INSERTs: see governance/bulk.py, where the generic code lives so
that governance/audit.py can use it too (dependencies point crm <- governance <- capture)."""

from __future__ import annotations

from governance.bulk import bulk_insert, execute_binary, insert_skipping_conflicts, new_row

__all__ = ["bulk_insert", "execute_binary", "insert_skipping_conflicts", "new_row"]
