from __future__ import annotations

from rest_framework.pagination import CursorPagination


class DefaultCursorPagination(CursorPagination):
    """Stable pages over tables that grow while being read (new mail keeps arriving)."""

    ordering = "-id"
    page_size_query_param = "page_size"
    max_page_size = 500
