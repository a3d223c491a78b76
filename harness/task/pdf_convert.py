"""A PDF's text layer as Markdown, page by page, with a `<!-- page N -->` marker where each page starts.

pypdf gives each page's text as the lines it was set in; the pair writer's sentence splitter reads a line at a
time, so `reflow` joins them back into paragraphs, running headers and page numbers are dropped, and words
broken by a hyphen are mended where the document itself shows how they are spelt. An encrypted PDF, or one with
no text (a scan), is refused with what to do.
"""
from __future__ import annotations

import io
import re
from pathlib import Path

from harness.errors import HarnessError
from harness.task.converted import Converted, needs, unreadable
from harness.task.provenance import marker, neutralise

_LEADER = re.compile(r"\s*\.{4,}\s*\d*\s*$")  # a table of contents' dotted leader and page number
_PAGE_NUMBER = re.compile(r"^\s*(?:page\s+)?\d{1,5}(?:\s*(?:/|of)\s*\d{1,5})?\s*$", re.IGNORECASE)
_OPENS_ITEM = re.compile(r"^\s*(?:[-•*▪◦]|\d{1,3}[.)])\s")


def _running_lines(pages: list[list[str]]) -> set[str]:
    """A first line repeated at the top of most pages: a running header, not text."""
    firsts = [p[0].strip() for p in pages[1:] if p]
    return {line for line in set(firsts) if len(pages) >= 3 and firsts.count(line) >= len(pages) / 2}


_WORD = re.compile(r"[\w-]+")
_TAIL = re.compile(r"(?:^|[\s/(\[\"“‘])([A-Za-z]{2,})-$")


def joined(left: str, right: str, vocabulary: set[str]) -> str:
    """Two lines joined where a word broke between them. A hyphen at a line's end is a typesetter's break
    ("con-" "figuration") or a real one ("xorg-" "server"): the document itself decides. Kept when the
    hyphenated word appears elsewhere in it; dropped when the whole word does, or when the break is inside a
    lowercase word."""
    tail, head = _TAIL.search(left), (_WORD.match(right) or [""])[0]
    if not left.endswith("-"):
        return f"{left} {right}"
    if not tail or not head:
        return left + right
    broken, whole = f"{tail.group(1)}-{head}".lower(), f"{tail.group(1)}{head}".lower()
    if broken not in vocabulary and (whole in vocabulary or head[:1].islower()):
        return left[:-1] + right
    return left + right


def reflow(lines: list[str], width: int, vocabulary: set[str] = frozenset()) -> list[str]:
    """A page's extracted lines joined back into paragraphs, one per line, which the pair writer's sentence
    splitter needs (it reads a line at a time). A line reaching near the text width continues on the next one;
    a short line, an indented one (code) or a list item starts anew; `joined` mends words broken by a hyphen."""
    out: list[str] = []
    joining = False
    for line in lines:
        line = _LEADER.sub("", line.rstrip())
        if not line.strip():
            out.append("")
            joining = False
            continue
        opens = line[:1].isspace() or _OPENS_ITEM.match(line)
        # After a sentence's full stop only a lowercase word continues it ("e.g." at a line's end); a capital
        # may open a heading, and a line per sentence is as good as a paragraph for the splitter.
        ended = out and out[-1].endswith((".", "!", "?")) and not line.strip()[:1].islower()
        if joining and not opens and not ended:
            out[-1] = joined(out[-1], line.strip(), vocabulary)
        else:
            out.append(line if line[:1].isspace() else line.strip())
        joining = not line[:1].isspace() and len(line) >= 0.8 * width and not line.endswith(":")
    return out


def pdf(path: Path, data: bytes) -> Converted:
    pypdf = needs("pypdf", "pypdf", path)
    try:
        reader = pypdf.PdfReader(io.BytesIO(data))
        if reader.is_encrypted and not reader.decrypt(""):  # an empty user password opens "restricted" PDFs
            raise HarnessError("is encrypted (password-protected): save an unprotected copy (print it to PDF, or "
                               "remove the password in the program that made it) and import that", path)
        pages = [(p.extract_text() or "").replace("\x00", "").splitlines() for p in reader.pages]
    except HarnessError:
        raise
    except Exception as e:  # pypdf raises many types on damaged files, and a missing AES library on some
        if "crypt" in type(e).__name__.lower() or "decrypt" in str(e).lower() or "AES" in str(e):
            raise HarnessError("is encrypted (password-protected): save an unprotected copy and import that",
                               path) from None
        raise unreadable(path, e, "PDF") from None
    if not any(line.strip() for page in pages for line in page):
        raise HarnessError(f"no text layer in its {len(pages)} page(s) (a scan or images of text): run OCR first "
                           "(e.g. `ocrmypdf in.pdf out.pdf`) and import the OCR'd copy", path)
    header = _running_lines(pages)
    # Words as the document spells them on one line, to tell "xorg-server" from "con-figuration" at a break.
    vocabulary = {w.lower() for page in pages for line in page for w in _WORD.findall(line[:-1] if
                                                                                      line.endswith("-") else line)}
    lengths = sorted(len(line) for page in pages for line in page if line.strip())
    width = lengths[int(0.9 * (len(lengths) - 1))]
    parts = []
    for n, lines in enumerate(pages, start=1):
        if n > 1 and lines and lines[0].strip() in header:
            lines = lines[1:]
        if lines and _PAGE_NUMBER.match(lines[-1]):
            lines = lines[:-1]
        body = "\n".join(reflow(lines, width, vocabulary)).strip()
        parts.append(f"{marker('page', n)}\n\n{neutralise(body)}\n" if body else f"{marker('page', n)}\n")
    return Converted("\n".join(parts), "pdf", len(pages))
