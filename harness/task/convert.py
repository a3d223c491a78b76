"""A team's document (PDF, DOCX, PPTX, HTML, Markdown, text) turned into the Markdown a task folder holds, once,
at import. PDF pages and PPTX slides are kept as `<!-- page N -->` / `<!-- slide N -->` lines
(harness/task/provenance.py) so a passage can be cited by its page.

One module per format: pdf_convert.py (pypdf), office.py (python-docx, python-pptx), html_convert.py (lxml, which
python-docx brings). The libraries are the `import` extra and are imported only when a file of their kind is
converted. Why these and not markitdown or trafilatura: bench/README.md, "Importing documents". Every file is
untrusted: a problem is one HarnessError naming the file and saying what to do, never a library's traceback.
"""
from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from harness.errors import HarnessError
from harness.task.converted import Converted
from harness.task.html_convert import html
from harness.task.office import docx, pptx
from harness.task.pdf_convert import pdf
from harness.task.reading import decode_text

TEXT_SUFFIXES = (".md", ".txt")
SUFFIXES = (".pdf", ".docx", ".pptx", ".html", ".htm") + TEXT_SUFFIXES
KINDS = "PDF, DOCX, PPTX, HTML, Markdown or text"


def text_file(path: Path, data: bytes) -> Converted:
    """Markdown and text are kept as they are (their own `<!-- -->` comments included: a team may write page
    markers by hand); only UTF-8 is accepted, as for any task document."""
    text = decode_text(data, path)
    return Converted(text, path.suffix.lower().lstrip("."), 0)


def converter(suffix: str) -> Callable[[Path, bytes], Converted]:
    return {".pdf": pdf, ".docx": docx, ".pptx": pptx, ".html": html, ".htm": html}.get(suffix, text_file)


def convert(path: Path, data: bytes) -> Converted:
    """`data` (the bytes of `path`, read once by the caller under its size limit) as Markdown."""
    out = converter(path.suffix.lower())(path, data)
    if not out.words:
        raise HarnessError(f"has no text to import (an empty {out.kind.upper()}); add text or remove the file", path)
    return out
