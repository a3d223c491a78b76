"""Document converters compared on real files: the import's own (pypdf, python-docx, python-pptx, lxml), markitdown
and trafilatura, for text kept, sentences kept whole on one line (what the pair writer's splitter needs), page
boundaries and time. The files are Debian's xorg-docs, which ships each document as PDF, HTML and the plain text
that is the reference here; DOCX and PPTX are made from the HTML by pandoc (an independent writer), when present.

    apt-get download xorg-docs && dpkg-deb -x xorg-docs_*.deb /tmp/xorg    # once
    PYTHONPATH=. python bench/import_converters.py /tmp/xorg/usr/share/doc/xorg-docs

Run it with a Python that has markitdown[pdf,docx,pptx] and trafilatura beside the harness's needs to compare all
three; a converter that is not installed is left out."""
from __future__ import annotations

import argparse
import gzip
import re
import shutil
import subprocess
import tempfile
import time
from collections import Counter
from pathlib import Path

from harness.task.convert import convert

_SENTENCE = re.compile(r"(?<=[.!?])\s+(?=[A-Z0-9])")


def words(text: str) -> list[str]:
    return re.findall(r"[a-z0-9]+", text.lower())


def reference(path: Path) -> str:
    raw = gzip.open(path, "rt").read() if path.suffix == ".gz" else path.read_text()
    return "\n".join(" ".join(p.split()) for p in re.split(r"\n\s*\n", raw))  # one paragraph a line


def scores(out: str, ref: str) -> tuple[float, float, float]:
    """(share of the reference's words in the output, share of the output's words in the reference, share of the
    reference's sentences of 6+ words found whole within one line of the output)."""
    a, b = Counter(words(out)), Counter(words(ref))
    common = sum((a & b).values())
    sentences = [" ".join(words(s)) for p in ref.splitlines() for s in _SENTENCE.split(p) if len(s.split()) >= 6]
    lines = {" ".join(words(line)) for line in out.splitlines()}
    whole = sum(any(s in line for line in lines) for s in sentences)
    return common / max(sum(b.values()), 1), common / max(sum(a.values()), 1), whole / max(len(sentences), 1)


def converters() -> dict:
    out = {"harness": lambda p: (lambda c: (c.text, c.pages))(convert(p, p.read_bytes()))}
    try:
        from markitdown import MarkItDown

        md = MarkItDown()
        # Its PDF text has a form feed between pages; its PPTX text a "<!-- Slide number: N -->" comment per slide.
        out["markitdown"] = lambda p: (lambda t: (t, t.count("\f") + 1 if "\f" in t else t.count("Slide number:")))(
            md.convert(p).text_content)
    except ImportError:
        pass
    try:
        import trafilatura

        out["trafilatura"] = lambda p: (trafilatura.extract(p.read_text(), output_format="markdown",
                                                            include_tables=True, favor_recall=True) or "", 0) \
            if p.suffix == ".html" else None
    except ImportError:
        pass
    return out


def files(root: Path, work: Path) -> list[tuple[str, Path, Path]]:
    """(format, file, reference text) for each document that has both."""
    out = []
    for ref in sorted(root.rglob("*.txt*")):
        stem = ref.name.split(".txt")[0]
        if stem in ("License",) or not (ref.parent / f"{stem}.html").is_file():
            continue
        html = ref.parent / f"{stem}.html"
        pdf = ref.parent / f"{stem}.pdf.gz"
        if pdf.is_file():
            plain = work / f"{stem}.pdf"
            plain.write_bytes(gzip.open(pdf).read())
            out.append(("pdf", plain, ref))
        out.append(("html", html, ref))
        for kind in ("docx", "pptx") if shutil.which("pandoc") else ():
            made = work / f"{stem}.{kind}"
            subprocess.run(["pandoc", "-f", "html", "-t", kind, str(html), "-o", str(made)], check=True,
                           capture_output=True)
            out.append((kind, made, ref))
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("root", type=Path, help="the extracted xorg-docs documentation folder")
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp())
    totals: dict[tuple[str, str], list] = {}
    for kind, path, ref in files(args.root, work):
        expected = reference(ref)
        for name, fn in converters().items():
            start = time.perf_counter()
            try:
                got = fn(path)
            except Exception as e:  # a converter that fails on a real file is a result too
                print(f"{kind:5} {path.name:28} {name:12} FAILED {type(e).__name__}: {str(e)[:80]}")
                continue
            if got is None:
                continue
            seconds = time.perf_counter() - start
            recall, precision, whole = scores(got[0], expected)
            totals.setdefault((kind, name), []).append((recall, precision, whole, seconds, got[1]))
    print("| format | converter | files | word recall | word precision | sentences whole on a line | pages kept "
          "| seconds (all files) |")
    print("|---|---|---|---|---|---|---|---|")
    for (kind, name), rows in sorted(totals.items()):
        n = len(rows)
        mean = [sum(r[i] for r in rows) / n for i in range(3)]
        pages = f"{sum(1 for r in rows if r[4])}/{n}"
        print(f"| {kind} | {name} | {n} | {mean[0]:.3f} | {mean[1]:.3f} | {mean[2]:.3f} | {pages} | "
              f"{sum(r[3] for r in rows):.2f} |")


if __name__ == "__main__":
    main()
