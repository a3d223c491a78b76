"""DOCX and PPTX files as Markdown, after checking the zip archive they are.

An Office file is a zip of XML parts, so it can be a zip bomb (a few KB that unpack to gigabytes) or carry a
member named `/etc/x` or `../../x`. Neither library extracts to disk, but the archive is refused before either
opens it: a file Word or PowerPoint wrote never looks like that, so such a file is a crafted one.
Pages: a DOCX has none of its own; where Word recorded where its pages broke (or the author put page breaks),
those become `<!-- page N -->` markers, placed at the paragraph the page starts in. PPTX slides always do.
"""
from __future__ import annotations

import io
import zipfile
from pathlib import Path, PurePosixPath, PureWindowsPath

from harness.errors import HarnessError
from harness.task.converted import Converted, needs, unreadable
from harness.task.provenance import marker, neutralise

MB = 2**20
MAX_UNPACKED = 200 * MB  # all members together, as their headers declare them (zipfile reads no more)
MAX_RATIO = 100  # a member that big and compressed more than this is a bomb; XML compresses 5-20x
MAX_MEMBERS = 10_000


def check_zip(path: Path, data: bytes, kind: str) -> None:
    """Refuse an archive that is no zip, unpacks too large, or names a member outside itself."""
    try:
        members = zipfile.ZipFile(io.BytesIO(data)).infolist()
    except (zipfile.BadZipFile, OSError, ValueError):
        raise HarnessError(f"is not a valid {kind} (not a zip archive, or a damaged one); open and re-save it", path) \
            from None
    if len(members) > MAX_MEMBERS:
        raise HarnessError(f"holds {len(members)} archive members (a {kind} has dozens); refusing a crafted "
                           "file: re-save it from the program that made it", path)
    for m in members:
        name = m.filename.replace("\\", "/")
        if name.startswith("/") or PureWindowsPath(m.filename).drive or ".." in PurePosixPath(name).parts:
            raise HarnessError(f"has an archive member with an absolute or '..' path ({m.filename!r}); no office "
                               "program writes one, so the file was crafted: re-save it, or leave it out", path)
        if m.file_size > 10 * MB and m.file_size > MAX_RATIO * max(m.compress_size, 1):
            raise HarnessError(f"member {m.filename!r} would unpack to {m.file_size // MB} MB from "
                               f"{m.compress_size // 1024} KB (a zip bomb); re-save the file, or leave it out", path)
    total = sum(m.file_size for m in members)
    if total > MAX_UNPACKED:
        raise HarnessError(f"would unpack to {total // MB} MB, over the {MAX_UNPACKED // MB} MB limit (a zip bomb, "
                           "or very large images): remove the images, or split the file", path)


def _cell_lines(rows: list[list[str]]) -> list[str]:
    """A table as Markdown rows; merged cells (repeated by the libraries) once."""
    out = []
    for i, cells in enumerate(rows):
        kept = [c for j, c in enumerate(cells) if j == 0 or c != cells[j - 1]]
        out.append("| " + " | ".join(" ".join(c.split()) for c in kept) + " |")
        if i == 0:
            out.append("|" + "---|" * len(kept))
    return out


# ---------------------------------------------------------------- DOCX

_W = "{http://schemas.openxmlformats.org/wordprocessingml/2006/main}"


def _breaks(p) -> dict[str, tuple[int, bool]]:
    """A paragraph's page breaks by kind ("rendered": where Word's own layout broke the page; "explicit": breaks
    the author put in), each as (how many, whether text comes before the first)."""
    out = {"rendered": (0, False), "explicit": (0, False)}
    seen_text = False
    for el in p.iter(f"{_W}lastRenderedPageBreak", f"{_W}br", f"{_W}t"):
        if el.tag == f"{_W}t":
            seen_text = seen_text or bool((el.text or "").strip())
        elif el.tag == f"{_W}lastRenderedPageBreak" or el.get(f"{_W}type") == "page":
            kind = "rendered" if el.tag == f"{_W}lastRenderedPageBreak" else "explicit"
            n, before = out[kind]
            out[kind] = (n + 1, before if n else seen_text)
    return out


def docx(path: Path, data: bytes) -> Converted:
    check_zip(path, data, "DOCX")
    module = needs("docx", "python-docx", path)
    try:
        blocks = list(module.Document(io.BytesIO(data)).iter_inner_content())
    except Exception as e:  # python-docx raises KeyError, ValueError, lxml errors... on damaged files
        raise unreadable(path, e, "DOCX") from None
    none = {"rendered": (0, False), "explicit": (0, False)}
    found = [(b, _breaks(b._p) if hasattr(b, "_p") else none) for b in blocks]  # tables: no page of their own
    # Word writes a rendered break beside each explicit one: count one kind, Word's layout where it is recorded.
    kind = "rendered" if any(br["rendered"][0] for _, br in found) else "explicit"
    paged = any(br[kind][0] for _, br in found)
    lines, page = ([marker("page", 1), ""] if paged else []), 1
    for block, br in found:
        n, text_before = br[kind]
        if n and not text_before:  # the page starts with this paragraph
            page += n
            lines += [marker("page", page), ""]
        lines += _docx_block(block) + [""]
        if n and text_before:  # the paragraph runs onto the next page: it is cited by the page it starts on
            page += n
            lines += [marker("page", page), ""]
    return Converted("\n".join(lines).strip() + "\n", "docx", page if paged else 0)


def _docx_block(block) -> list[str]:
    if hasattr(block, "rows"):  # a table
        return _cell_lines([[c.text for c in row.cells] for row in block.rows])
    text = neutralise(" ".join(block.text.split()))
    if not text:
        return []
    style = (block.style.name if block.style is not None else "") or ""
    if style == "Title":
        return [f"# {text}"]
    if style.startswith("Heading ") and style[8:].isdigit():
        return ["#" * min(int(style[8:]) + 1, 6) + " " + text]
    return [f"- {text}" if "List" in style else text]


# ---------------------------------------------------------------- PPTX

def _shapes(shapes) -> list:
    """Shapes in reading order (top to bottom, then left to right), groups opened."""
    out = []
    for s in sorted(shapes, key=lambda s: (s.top or 0, s.left or 0)):
        out += _shapes(s.shapes) if hasattr(s, "shapes") and not hasattr(s, "text_frame") else [s]
    return out


def _slide_lines(slide) -> list[str]:
    title = slide.shapes.title
    lines = [f"## {neutralise(' '.join(title.text_frame.text.split()))}"] if title is not None and \
        title.has_text_frame and title.text_frame.text.strip() else []
    for shape in _shapes(slide.shapes):
        if title is not None and shape.shape_id == title.shape_id:
            continue
        if getattr(shape, "has_table", False) and shape.has_table:
            lines += _cell_lines([[c.text for c in row.cells] for row in shape.table.rows])
        elif getattr(shape, "has_text_frame", False) and shape.has_text_frame:
            for para in shape.text_frame.paragraphs:
                text = neutralise(" ".join("".join(r.text for r in para.runs).split()))
                if text:
                    lines.append(("  " * (para.level - 1) + "- " if para.level else "") + text)
    if slide.has_notes_slide and slide.notes_slide.notes_text_frame is not None:
        notes = " ".join(slide.notes_slide.notes_text_frame.text.split())
        if notes:
            lines.append(f"Notes: {neutralise(notes)}")
    return lines


def pptx(path: Path, data: bytes) -> Converted:
    check_zip(path, data, "PPTX")
    module = needs("pptx", "python-pptx", path)
    try:
        slides = [_slide_lines(s) for s in module.Presentation(io.BytesIO(data)).slides]
    except Exception as e:
        raise unreadable(path, e, "PPTX") from None
    parts = [f"{marker('slide', n)}\n\n" + "\n\n".join(lines) + "\n" for n, lines in enumerate(slides, start=1)]
    return Converted("\n".join(parts), "pptx", len(slides))
