"""What converting one document gives (harness/task/convert.py dispatches by type), and the two ways a
converter fails: its library is not installed, or the file is damaged. One line each, never a traceback."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from harness.errors import HarnessError
from harness.task.provenance import without_markers


@dataclass(frozen=True)
class Converted:
    text: str  # Markdown, with page or slide markers where the format has them
    kind: str  # "pdf", "docx", "pptx", "html", "md", "txt"
    pages: int  # pages or slides with a marker; 0 for formats without pages

    @property
    def words(self) -> int:
        return len(without_markers(self.text).split())


def needs(module: str, package: str, path: Path):
    """The converter library, or one line saying how to install it."""
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError:
        raise HarnessError(f"converting this file needs {package}, which is not installed: pip install "
                           f"'harness[import]' (or `make install`)", path) from None


def unreadable(path: Path, e: Exception, kind: str) -> HarnessError:
    """A library's failure on a damaged or unusual file, as the one line a user can act on."""
    why = " ".join(str(e).split())[:200] or type(e).__name__
    return HarnessError(f"cannot read this {kind} ({why}); open and re-save it, or export it as PDF, and import "
                        "that copy", path)
