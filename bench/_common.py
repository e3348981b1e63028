"""Shared helpers for the benchmark scripts in bench/.

Convention (every script): ``python bench/NAME.py [--quick]`` prints a readable table and,
as its LAST line, ``RESULT NAME ratio=X target=OP Y key=value ...``. ``--quick`` finishes
within a few minutes on a small machine and still measures the ratio meaningfully.

Usage::

    from _common import bench_args, django_setup, result_line

    args = bench_args(__doc__)
    django_setup(args.database_url)
    ...
    result_line("audit", ratio, ">=0.9", with_chain_ev_s=1234, without_ev_s=1300)
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent

#: The PostgreSQL the benchmarks use unless --database-url or DATABASE_URL says otherwise.
DEFAULT_PG_URL = "postgres://postgres@127.0.0.1:5432/mailwarden"


def bench_database_url(given: str | None, name: str) -> str:
    """The benchmark's own database `name` on the PostgreSQL server of `given`, else of
    $DATABASE_URL, else the local default (only the server is taken from them)."""
    base = (given or os.environ.get("DATABASE_URL") or DEFAULT_PG_URL).rsplit("/", 1)[0]
    if not base.startswith("postgres"):
        base = DEFAULT_PG_URL.rsplit("/", 1)[0]
    return f"{base}/{name}"


def recreate_database(url: str) -> None:
    """Drop and create the database `url` names (a benchmark's own, never the app's)."""
    import psycopg

    base, name = url.rsplit("/", 1)
    with psycopg.connect(base + "/postgres", autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')


def bench_args(
    description: str | None = None,
    *,
    configure: Callable[[argparse.ArgumentParser], None] | None = None,
    argv: Sequence[str] | None = None,
) -> argparse.Namespace:
    """Parse the common benchmark options (--quick, --database-url) plus script-specific ones.

    ``configure`` receives the parser so a script can add its own options.
    """
    parser = argparse.ArgumentParser(description=(description or "").strip() or None)
    parser.add_argument(
        "--quick",
        action="store_true",
        help="smaller run that finishes within a few minutes and still measures the ratio",
    )
    parser.add_argument(
        "--database-url",
        default=None,
        help="database to use (default: $DATABASE_URL, else the settings default)",
    )
    if configure is not None:
        configure(parser)
    return parser.parse_args(argv)


def _format_figure(value: object) -> str:
    if isinstance(value, float):
        return f"{value:.4g}" if abs(value) < 1 else f"{value:.1f}".rstrip("0").rstrip(".")
    return str(value).replace(" ", "_")


def result_line(name: str, ratio: float, target: str, **figures: object) -> str:
    """Print (and return) the final ``RESULT`` line.

    ``target`` is the comparison and threshold, e.g. ``">=0.9"`` or ``"<=1.5"``;
    it is printed as ``target>=0.9``. Figures are printed as ``key=value`` in the given order.
    """
    target = target.strip()
    if target.startswith("target"):
        target = target[len("target") :]
    if target and target[0].isdigit():
        target = ">=" + target
    parts = [f"RESULT {name}", f"ratio={ratio:.3f}", f"target{target}"]
    parts.extend(f"{key}={_format_figure(value)}" for key, value in figures.items())
    line = " ".join(parts)
    print(line, flush=True)
    return line


def print_table(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> None:
    """Print a small aligned table (the human-readable part of a benchmark's output)."""
    cells = [[str(h) for h in headers]] + [
        [_format_figure(c) if isinstance(c, float) else str(c) for c in row] for row in rows
    ]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    for index, row in enumerate(cells):
        print("  ".join(cell.ljust(widths[i]) for i, cell in enumerate(row)), flush=True)
        if index == 0:
            print("  ".join("-" * w for w in widths), flush=True)


def django_setup(database_url: str | None = None) -> None:
    """Make the repository importable, point Django at config.settings and call django.setup().

    ``database_url`` (when given) overrides DATABASE_URL for this process.
    """
    if str(REPO_ROOT) not in sys.path:
        sys.path.insert(0, str(REPO_ROOT))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    if database_url:
        os.environ["DATABASE_URL"] = database_url
    import django

    django.setup()


# --- CPU accounting ----------------------------------------------------------------------
# Wall-clock rates move 2-4x with other load on this 2-core machine; CPU seconds spent by the
# processes doing the work move far less, so the benchmarks print both.

_TICK = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def process_cpu_seconds(pid: int) -> float:
    """User + system CPU of a live process (0.0 if it is gone), from /proc/PID/stat."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return 0.0
    fields = stat[stat.rindex(")") + 2 :].split()
    return (int(fields[11]) + int(fields[12])) / _TICK


def child_pids(parent: int) -> list[int]:
    out = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            if int(stat[stat.rindex(")") + 2 :].split()[1]) == parent:
                out.append(int(entry.name))
    return out


def pids_named(name: str) -> list[int]:
    out = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if (entry / "comm").read_text().strip() == name:
                    out.append(int(entry.name))
            except OSError:
                continue
    return out


class CpuMeter:
    """CPU seconds spent between start() and stop() by this process and the given processes.

    Processes first seen at stop() count in full (they started after start()); processes that
    ended in between are not counted, so keep database connections open while measuring.
    """

    def __init__(self, pids: Callable[[], list[int]] = list, *, own: bool = True) -> None:
        self.pids, self.own = pids, own
        self.seconds = 0.0

    def start(self) -> CpuMeter:
        import time

        self._own0 = time.process_time() if self.own else 0.0
        self._cpu0 = {pid: process_cpu_seconds(pid) for pid in self.pids()}
        return self

    def stop(self) -> float:
        import time

        own = (time.process_time() - self._own0) if self.own else 0.0
        others = sum(
            process_cpu_seconds(pid) - self._cpu0.get(pid, 0.0) for pid in set(self.pids())
        )
        self.seconds = own + others
        return self.seconds


def db_backend_pids(database: str | None = None, *, own_only: bool = False) -> list[int]:
    """PostgreSQL server processes serving this Django connection (or all on `database`)."""
    from django.db import connection

    with connection.cursor() as cursor:
        if own_only:
            cursor.execute("SELECT pg_backend_pid()")
        else:
            cursor.execute("SELECT pid FROM pg_stat_activity WHERE datname = %s", [database])
        return [row[0] for row in cursor.fetchall()]
