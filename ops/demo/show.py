"""Progress lines and plain-text tables; the only module that prints."""

from __future__ import annotations

import sys
import time
from collections.abc import Sequence

_START = time.monotonic()


def elapsed() -> float:
    """Seconds since the demo started."""
    return time.monotonic() - _START


def say(message: str) -> None:
    """One progress line: wall clock, seconds since start, message."""
    stamp = time.strftime("%H:%M:%S")
    print(f"{stamp} +{elapsed():6.1f}s  {message}", flush=True)


def step(number: int, total: int, title: str) -> None:
    print(flush=True)
    say(f"==> [{number}/{total}] {title}")


def block(text: str, indent: str = "    ") -> None:
    """Multi-line output (a table, a command's stdout) indented under its step."""
    for line in text.rstrip("\n").splitlines():
        print(f"{indent}{line}", flush=True)


def table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """Columns padded to their widest cell, separated by two spaces."""
    widths = [len(h) for h in headers]
    for row in rows:
        widths = [max(w, len(cell)) for w, cell in zip(widths, row, strict=True)]

    def line(cells: Sequence[str]) -> str:
        return "  ".join(c.ljust(w) for c, w in zip(cells, widths, strict=True)).rstrip()

    rule = "  ".join("-" * w for w in widths)
    return "\n".join([line(headers), rule, *(line(r) for r in rows)])


def warn(message: str) -> None:
    print(f"!! {message}", file=sys.stderr, flush=True)
