"""Small real documents for the import tests, made with the libraries the import reads them with (python-docx,
python-pptx, openpyxl) or, for PDF, written out by hand: one page per string, in the standard Helvetica font that
every PDF reader has, so no font is embedded and pypdf reads the text back exactly."""
import io
import zipfile
from pathlib import Path


def pdf_bytes(pages: list[str]) -> bytes:
    objects = ["<< /Type /Catalog /Pages 2 0 R >>", None, "<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>"]
    kids = []
    for text in pages:
        lines = [line.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)") for line in text.split("\n")]
        shown = " T* ".join(f"({line}) Tj" for line in lines)
        stream = f"BT /F1 11 Tf 14 TL 72 720 Td {shown} ET" if text else ""
        objects.append(f"<< /Length {len(stream)} >>\nstream\n{stream}\nendstream")
        objects.append(f"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents {len(objects)} 0 R "
                       "/Resources << /Font << /F1 3 0 R >> >> >>")
        kids.append(f"{len(objects)} 0 R")
    objects[1] = f"<< /Type /Pages /Kids [{' '.join(kids)}] /Count {len(kids)} >>"
    out, offsets = io.BytesIO(), []
    out.write(b"%PDF-1.4\n")
    for n, body in enumerate(objects, start=1):
        offsets.append(out.tell())
        out.write(f"{n} 0 obj\n{body}\nendobj\n".encode("latin-1"))
    xref = out.tell()
    out.write(f"xref\n0 {len(objects) + 1}\n0000000000 65535 f \n".encode())
    out.write("".join(f"{o:010d} 00000 n \n" for o in offsets).encode())
    out.write(f"trailer\n<< /Size {len(objects) + 1} /Root 1 0 R >>\nstartxref\n{xref}\n%%EOF\n".encode())
    return out.getvalue()


def encrypted_pdf(pages: list[str]) -> bytes:
    from pypdf import PdfReader, PdfWriter

    writer = PdfWriter(clone_from=PdfReader(io.BytesIO(pdf_bytes(pages))))
    writer.encrypt("secret", algorithm="RC4-128")  # RC4 needs no cryptography library to write or to detect
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


def docx_bytes(paragraphs: list[str], page_break_after: int | None = None) -> bytes:
    """A heading, the paragraphs (a page break after the one at `page_break_after`), and a two-row table."""
    import docx
    from docx.enum.text import WD_BREAK

    d = docx.Document()
    d.add_heading("Leave policy", level=1)
    for i, text in enumerate(paragraphs):
        p = d.add_paragraph(text)
        if i == page_break_after:
            p.add_run().add_break(WD_BREAK.PAGE)
    table = d.add_table(rows=2, cols=2)
    for (r, c), text in {(0, 0): "Plan", (0, 1): "Days", (1, 0): "Standard", (1, 1): "25"}.items():
        table.cell(r, c).text = text
    out = io.BytesIO()
    d.save(out)
    return out.getvalue()


def pptx_bytes(slides: list[tuple[str, str, str]]) -> bytes:
    """One slide per (title, body, speaker notes)."""
    from pptx import Presentation

    deck = Presentation()
    for title, body, notes in slides:
        slide = deck.slides.add_slide(deck.slide_layouts[1])
        slide.shapes.title.text = title
        slide.placeholders[1].text = body
        slide.notes_slide.notes_text_frame.text = notes
    out = io.BytesIO()
    deck.save(out)
    return out.getvalue()


def xlsx_bytes(rows: list[list]) -> bytes:
    from openpyxl import Workbook

    book = Workbook()
    for row in rows:
        book.active.append(row)
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def zip_with(path: Path, members: dict[str, bytes]) -> None:
    """An archive with the given members, as a crafted Office file would be."""
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as z:
        for name, data in members.items():
            z.writestr(zipfile.ZipInfo(name), data, compress_type=zipfile.ZIP_DEFLATED)
