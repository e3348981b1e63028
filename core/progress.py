"""Progress of long management commands: a tqdm bar on a terminal, plain log lines otherwise.

    with progress_reporter(total=n, desc="import", unit="msg", stream=self.stderr) as bar:
        for chunk in work:
            ...
            bar.update(len(chunk))

On a terminal (the stream is a tty) this is a tqdm bar. Anywhere else (cron, a container's
log, a pipe) a bar's carriage returns would be noise, so it writes a plain line at every
`lines`-th part of the total (default every 10 %) and at the end: `import: 500/2000 msg (25%)`.
`enabled=False` (a --no-progress option) writes nothing. Generic: every app may use it.
"""

from __future__ import annotations

import sys
from typing import IO, Any

from tqdm import tqdm


def _isatty(stream: Any) -> bool:
    target = getattr(stream, "_out", stream)  # Django's OutputWrapper keeps the real stream
    try:
        return bool(target.isatty())
    except (AttributeError, ValueError):
        return False


class LineProgress:
    """The non-terminal reporter: the same update/reset/set_description/close as tqdm."""

    def __init__(self, *, total: int | None, desc: str, unit: str, stream: IO[str], lines: int):
        self.total = total
        self.n = 0
        self.desc = desc
        self.unit = unit
        self.stream = stream
        self.lines = max(1, lines)
        self._next_mark = self._mark_after(0)
        self._closed = False
        self._last_written: int | None = None

    def _mark_after(self, n: int) -> int | None:
        if not self.total:
            return None
        step = max(1, -(-self.total // self.lines))
        return (n // step + 1) * step

    def _write(self) -> None:
        if self.total:
            pct = 100 * self.n // self.total
            text = f"{self.desc}: {self.n}/{self.total} {self.unit} ({pct}%)"
        else:
            text = f"{self.desc}: {self.n} {self.unit}"
        self.stream.write(text.lstrip(": ") + "\n")
        if hasattr(self.stream, "flush"):
            self.stream.flush()
        self._last_written = self.n

    def update(self, n: int = 1) -> None:
        self.n += n
        if self._next_mark is not None and self.n >= self._next_mark:
            self._write()
            self._next_mark = self._mark_after(self.n)

    def set_description(self, desc: str) -> None:
        self.desc = desc

    def reset(self, total: int | None = None) -> None:
        self.total = total
        self.n = 0
        self._next_mark = self._mark_after(0)
        self._last_written = None

    def refresh(self) -> None:
        if self._next_mark is not None and self.n >= self._next_mark:
            self._write()
            self._next_mark = self._mark_after(self.n)

    def close(self) -> None:
        if not self._closed and self._last_written != self.n and (self.n or self.total):
            self._write()
        self._closed = True

    def __enter__(self) -> LineProgress:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class _Silent(LineProgress):
    def _write(self) -> None:
        pass


def progress_reporter(
    *,
    total: int | None = None,
    desc: str = "",
    unit: str = "item",
    stream: Any = None,
    enabled: bool = True,
    lines: int = 10,
    leave: bool = True,
) -> Any:
    """A progress reporter (context manager; update(n), set_description, reset, close)."""
    stream = stream if stream is not None else sys.stderr
    if not enabled:
        return _Silent(total=total, desc=desc, unit=unit, stream=stream, lines=lines)
    if _isatty(stream):
        return tqdm(
            total=total,
            desc=desc or None,
            unit=unit,
            file=getattr(stream, "_out", stream),
            leave=leave,
        )
    return LineProgress(total=total, desc=desc, unit=unit, stream=stream, lines=lines)
