"""Reading files from an untrusted folder (a task folder, an import's inputs): links, special files, sizes,
encodings and JSONL, each refused with one line naming the file (and line).

The rules: no symbolic links and nothing but folders and regular files (a link could pull /etc/passwd into prompts,
predictions and caches); a file read is capped at a limit its caller names, a JSONL file at 200 MB and one of its
lines at 64 KB, JSON nested at most 100 levels deep; UTF-8 only, a leading byte-order mark accepted; JSONL lines
split on "\\n" only, so U+2028, U+2029 and U+0085 inside a JSON string are text, not line breaks."""
from __future__ import annotations

import json
import os
import stat
from pathlib import Path
from typing import Any

from harness.errors import HarnessError

MB = 2**20
MAX_JSONL_BYTES = 200 * MB
MAX_LINE_BYTES = 64 * 2**10
MAX_DEPTH = 100  # JSON and YAML nesting
_TOO_DEEP = object()


def check_tree(root: Path) -> None:
    """Refuse symbolic links and special files anywhere inside the task folder, before reading any of it."""
    stack = [root]
    while stack:
        folder = stack.pop()
        try:
            entries = sorted(os.scandir(folder), key=lambda e: e.name)
        except OSError as e:
            raise HarnessError(f"cannot read this folder ({e.strerror})", folder) from None
        for entry in entries:
            path = Path(entry.path)
            if entry.is_symlink():
                raise HarnessError("is a symbolic link; task folders may not contain links (a link could pull "
                                   "in any file on this machine): copy the file in instead", path)
            if entry.is_dir(follow_symlinks=False):
                stack.append(path)
            elif not entry.is_file(follow_symlinks=False):
                raise HarnessError("is not a regular file (a pipe, socket or device); remove it", path)


def _size(n: int) -> str:
    return f"{n / MB:.1f} MB" if n >= MB else f"{n / 1024:.0f} KB" if n >= 1024 else f"{n} bytes"


def read_bytes(path: Path, limit: int) -> bytes:
    """A regular file's bytes, refused (one line) when it is a link, not a regular file, or over `limit`."""
    # O_NOFOLLOW: a file swapped for a link after check_tree is still refused, not followed.
    # O_NONBLOCK: a pipe swapped in is refused below instead of waiting forever for a writer.
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0))
    except OSError as e:
        raise HarnessError(f"cannot open ({e.strerror}); task files must be regular files, not links", path) from None
    with os.fdopen(fd, "rb") as f:
        st = os.fstat(f.fileno())
        if not stat.S_ISREG(st.st_mode):
            raise HarnessError("is not a regular file", path)
        if st.st_size > limit:
            raise HarnessError(f"is {_size(st.st_size)}, over the {_size(limit)} limit for this file; "
                               "split it into smaller files", path)
        return f.read(limit + 1)


def read_text(path: Path, limit: int) -> str:
    return decode_text(read_bytes(path, limit), path)


def decode_text(raw: bytes, path: Path) -> str:
    """A file's bytes as text: UTF-8 only (a leading byte-order mark dropped), refused naming the line of the first
    NUL byte or undecodable byte."""
    if b"\x00" in raw:  # the line of the first one: a stray NUL in a long JSONL file is otherwise hard to find
        raise HarnessError("looks like a binary file (contains NUL bytes); only UTF-8 text is allowed here", path,
                           raw[: raw.index(b"\x00")].count(b"\n") + 1)
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        line = raw[: e.start].count(b"\n") + 1
        raise HarnessError(f"not UTF-8 text (byte {e.start}); re-save the file as UTF-8", path, line) from None
    return text.removeprefix("\ufeff")  # a byte-order mark, as some editors write it


def _depth(value: Any) -> int:
    """Nesting depth of parsed JSON, without recursion (the data may be deep)."""
    deepest, stack = 0, [(value, 1)]
    while stack:
        v, d = stack.pop()
        if isinstance(v, (dict, list)):
            deepest = max(deepest, d)
            stack.extend((c, d + 1) for c in (v.values() if isinstance(v, dict) else v))
    return deepest


def read_jsonl(path: Path) -> list[tuple[int, dict[str, Any]]]:
    """A JSONL file's objects with their line numbers, under the limits above (a task's files, an import's)."""
    rows = []
    # "\n" only: str.splitlines would also break at U+2028, U+2029 and U+0085, which JSON strings may hold.
    for n, line in enumerate(read_text(path, MAX_JSONL_BYTES).split("\n"), start=1):
        if not line.strip():
            continue
        if len(line) > MAX_LINE_BYTES // 4 and len(line.encode()) > MAX_LINE_BYTES:
            raise HarnessError(f"line is {len(line.encode()) // 1024} KB, over the {MAX_LINE_BYTES // 1024} KB "
                               "limit for one JSONL line; shorten it", path, n)
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as e:
            raise HarnessError(f"malformed JSON ({e.msg} at column {e.colno})", path, n) from None
        except RecursionError:  # deeper than Python's parser goes, so certainly over the limit
            obj = _TOO_DEEP
        if obj is _TOO_DEEP or _depth(obj) > MAX_DEPTH:
            raise HarnessError(f"JSON nested deeper than {MAX_DEPTH} levels; a row is one flat object", path, n)
        if not isinstance(obj, dict):
            raise HarnessError("each line must be a JSON object {...}", path, n)
        rows.append((n, obj))
    return rows
