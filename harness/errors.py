"""One exception type for every problem a user can fix, so the CLI can print it without a traceback."""
from __future__ import annotations

from pathlib import Path


class HarnessError(Exception):
    """A user-fixable problem: names the file (and line) and says what to do."""

    def __init__(self, message: str, path: Path | str | None = None, line: int | None = None):
        self.path = str(path) if path is not None else None
        self.line = line
        self.message = message
        where = self.path or ""
        if where and line is not None:
            where += f":{line}"
        super().__init__(f"{where}: {message}" if where else message)


def printable(text: str) -> str:
    """`text` on one terminal line: line breaks become spaces and any other control character is shown escaped,
    so a file name a task chose (a carriage return, an escape sequence) can neither split an error nor drive
    the terminal."""
    flat = " ".join(text.split("\n"))
    return "".join(c if c.isprintable() or c == " " else c.encode("unicode_escape").decode("ascii") for c in flat)
