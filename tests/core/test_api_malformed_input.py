"""Malformed input is the client's 4xx, never a 500, on every route of `/api/v1/`.

The routes, their path parameters, filters and request bodies come from the OpenAPI schema,
which is checked against the URL resolver, so a new route or filter is walked without editing
this file. Run it on PostgreSQL too: out-of-range integers fail differently there (bigint
overflow in the database) than on SQLite (OverflowError in the driver).
"""

from __future__ import annotations

import base64
import re
from functools import cache
from typing import Any

import pytest
from django.urls import URLPattern, URLResolver, get_resolver
from drf_spectacular.generators import SchemaGenerator

pytestmark = pytest.mark.django_db

BIGINT_MAX = 2**63 - 1
HUGE = 2**70
METHODS = ("get", "post", "put", "patch", "delete")

# Path segments that can never name a record: letters, fractions, signs, other scripts'
# digits, beyond bigint, NUL and spaces.
BAD_IDS = [
    "abc",
    "1.5",
    "-1",
    "0x10",
    "1e3",
    "%D9%A1%D9%A2",  # Arabic-Indic digits: \d matches them, int() accepts them
    str(HUGE),
    str(BIGINT_MAX + 1),
    str(-HUGE),
    "%00",
    "%201",
    "9" * 400,
]
# A well-formed id that names nothing: the database is asked and answers nothing.
UNKNOWN_IDS = ["0", str(BIGINT_MAX)]

BAD_QUERY_VALUES = [
    "",
    "abc",
    "-1",
    "0",
    "1.5",
    str(HUGE),
    str(-HUGE),
    str(BIGINT_MAX + 1),
    "1e400",
    "nan",
    "inf",
    "\x00",
    "9" * 400,
    "2025-13-45T99:99",
    "[]",
]


def crafted_cursor(query: str) -> str:
    return base64.b64encode(query.encode()).decode()


BAD_CURSORS = [
    crafted_cursor("p=abc"),
    crafted_cursor(f"p={HUGE}"),
    crafted_cursor(f"p={-HUGE}"),
    crafted_cursor("p=\x00"),
    crafted_cursor("r=1&p=1.5"),
    crafted_cursor("o=-5"),
    "x",  # not base64 (bad padding)
]

BAD_BODY_VALUES: list[Any] = [HUGE, -HUGE, BIGINT_MAX + 1, "abc", "\x00", 1.5, [HUGE], {"a": 1}]


@cache
def schema() -> dict[str, Any]:
    return SchemaGenerator().get_schema(request=None, public=True)


def operations() -> list[tuple[str, str, dict[str, Any]]]:
    return [
        (path, method, op)
        for path, item in schema()["paths"].items()
        if path.startswith("/api/v1/")
        for method, op in item.items()
        if method in METHODS
    ]


def params(op: dict[str, Any], where: str) -> list[dict[str, Any]]:
    return [p for p in op.get("parameters", []) if p["in"] == where]


def fill(path: str, world, **override: str) -> str:
    """`path` with every `{param}` replaced by an existing record's id unless overridden."""
    return re.sub(r"{(\w+)}", lambda m: override.get(m[1], str(world.real_id(path, m[1]))), path)


def op_id(case: tuple[str, str, dict[str, Any]]) -> str:
    return f"{case[1].upper()} {case[0]}"


PATH_PARAM_OPS = [c for c in operations() if params(c[2], "path")]
QUERY_PARAM_OPS = [c for c in operations() if params(c[2], "query")]
BODY_OPS = [
    c
    for c in operations()
    if "application/json" in c[2].get("requestBody", {}).get("content", {}) and c[1] != "delete"
]
PATHS = sorted({c[0] for c in operations()})


def api_patterns(resolver: URLResolver, prefix: str = "") -> list[str]:
    found = []
    for entry in resolver.url_patterns:
        route = prefix + str(entry.pattern)
        if isinstance(entry, URLResolver):
            found += api_patterns(entry, route)
        elif isinstance(entry, URLPattern) and route.startswith("api/v1/"):
            found.append(route)
    return found


def test_the_walk_covers_every_api_route_of_the_url_resolver():
    routes = api_patterns(get_resolver())
    assert routes
    # A route's shape without its parameter syntax: api/v1/emails/{}/attachments/{}/
    shape = re.compile(r"<[^>]+>|\{[^}]+\}|\(\?P<[^)]+\)")
    documented = {shape.sub("{}", p.lstrip("/")) for p in PATHS}
    for route in routes:
        if "format" in route or route.rstrip("$") in ("api/v1/", "^api/v1/"):
            continue  # format-suffix twins and the browsable root
        plain = shape.sub("{}", route.replace("^", "").replace("$", ""))
        assert plain in documented, route


@pytest.mark.parametrize("case", PATH_PARAM_OPS, ids=op_id)
def test_an_id_that_cannot_name_a_record_is_a_404(api_world, case):
    path, method, op = case
    for param in params(op, "path"):
        for bad in BAD_IDS + UNKNOWN_IDS:
            url = fill(path, api_world, **{param["name"]: bad})
            response = getattr(api_world.client, method)(url, {}, format="json")
            assert response.status_code == 404, (url, response.status_code)


@pytest.mark.parametrize("case", QUERY_PARAM_OPS, ids=op_id)
def test_a_malformed_filter_value_is_a_400_or_ignored_never_a_500(api_world, case):
    path, _, op = case
    url = fill(path, api_world)
    for param in params(op, "query"):
        name = param["name"]
        values = BAD_QUERY_VALUES + (BAD_CURSORS if name == "cursor" else [])
        for bad in values:
            response = api_world.client.get(url, {name: bad})
            assert response.status_code in (200, 400, 404), (name, bad, response.status_code)
            if param["schema"].get("type") == "integer" and name != "page_size":
                if bad in (str(HUGE), str(-HUGE), str(BIGINT_MAX + 1), "abc", "1e400"):
                    assert response.status_code == 400, (name, bad, response.status_code)
            if name == "cursor" and bad in BAD_CURSORS:
                assert response.status_code == 404, (bad, response.status_code)


@pytest.mark.parametrize("case", BODY_OPS, ids=op_id)
def test_a_malformed_field_in_a_request_body_is_a_4xx_never_a_500(api_world, case):
    path, method, op = case
    url = fill(path, api_world)
    ref = op["requestBody"]["content"]["application/json"]["schema"].get("$ref", "")
    component = schema()["components"]["schemas"].get(ref.rsplit("/", 1)[-1], {})
    for name in component.get("properties", {}) or {"anything": {}}:
        for bad in BAD_BODY_VALUES:
            response = getattr(api_world.client, method)(url, {name: bad}, format="json")
            assert response.status_code < 500, (name, bad, response.status_code)
    for body in ("[]", '"text"', "1", "null", "{", '{"a": 1e400}'):
        response = getattr(api_world.client, method)(url, body, content_type="application/json")
        assert response.status_code < 500, (body, response.status_code)


@pytest.mark.parametrize("path", PATHS)
def test_options_head_and_unknown_methods_answer_on_every_path(api_world, path):
    url = fill(path, api_world)
    assert api_world.client.options(url).status_code == 200, url
    allowed = {m for p, m, _ in operations() if p == path}
    head = api_world.client.head(url).status_code
    get = [op for p, m, op in operations() if p == path and m == "get"]
    needs_query = any(q.get("required") for op in get for q in params(op, "query"))
    expected = {200, 400} if needs_query else {200}  # 400: a required query parameter is missing
    assert head in (expected if get else {405}), (url, head)
    for method in ("PROPFIND", "TRACE", "FOO", *(m.upper() for m in METHODS if m not in allowed)):
        # DRF checks permissions before the method: a read-only endpoint (no write scope
        # exists for it) may refuse an unsafe method with 403 first.
        assert api_world.client.generic(method, url).status_code in (403, 405), (method, url)
