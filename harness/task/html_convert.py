"""An HTML page as Markdown: its text only. Nothing in it runs: scripts, styles and other non-text elements are
dropped with their contents, and comments with them (so a page cannot forge a `<!-- page N -->` marker).

lxml (which python-docx brings) parses it as browsers do, forgiving broken markup, and without fetching or
resolving anything. The tree is walked without recursion, so deep nesting costs no stack. Whitespace is
collapsed as a browser shows it, so a hard-wrapped source paragraph becomes one line, which the pair writer's
sentence splitter needs; <pre> keeps its lines.
"""
from __future__ import annotations

from pathlib import Path

from harness.errors import HarnessError
from harness.task.converted import Converted, needs, unreadable
from harness.task.provenance import neutralise

DROPPED = frozenset("script style noscript template head iframe object embed svg math canvas select button "
                    "textarea".split())
BLOCKS = frozenset("p div section article main aside header footer nav ul ol dl dt dd table thead tbody tfoot tr "
                   "blockquote figure figcaption form fieldset address hr br h1 h2 h3 h4 h5 h6 li pre caption "
                   "details summary".split())
CELLS = frozenset(("td", "th"))


class _Writer:
    """Collects text into Markdown lines as the walk opens and closes elements."""

    def __init__(self):
        self.lines: list[str] = []
        self.words: list[str] = []
        self.prefix = ""  # the open block's Markdown: "# ", "- ", or PRE for <pre>

    def flush(self, prefix: str = "") -> None:
        raw = "".join(self.words)
        if self.prefix == PRE:
            body = raw.strip("\n")
            line = f"```\n{body}\n```" if body.strip() else ""
        else:
            line = " ".join(raw.split())
            line = self.prefix + line if line else ""
        if line:
            self.lines.append(neutralise(line))
        self.words, self.prefix = [], prefix


PRE = "```"


def _open(tag: str, w: _Writer) -> None:
    if tag in CELLS:
        w.words.append(" | ")
    elif tag in BLOCKS:
        w.flush()
        if tag[:1] == "h" and tag[1:].isdigit():
            w.prefix = "#" * int(tag[1:]) + " "
        elif tag == "li":
            w.prefix = "- "
        elif tag == "pre":
            w.prefix = PRE


def html(path: Path, data: bytes) -> Converted:
    lxml_html = needs("lxml.html", "lxml", path)
    from lxml import etree

    try:
        root = lxml_html.fromstring(data)
    except (etree.ParserError, ValueError) as e:
        if not data.strip():
            raise HarnessError("is empty; add text or remove the file", path) from None
        raise unreadable(path, e, "HTML page") from None
    w, skipping = _Writer(), 0
    for event, el in etree.iterwalk(root, events=("start", "end", "comment", "pi")):
        tag = el.tag.lower() if isinstance(el.tag, str) else ""
        if event in ("comment", "pi"):  # never text; what follows them is
            if not skipping:
                w.words.append(el.tail or "")
            continue
        if event == "start":
            if skipping or tag in DROPPED:
                skipping += 1
                continue
            _open(tag, w)
            w.words.append(el.text or "")
        else:
            if skipping:
                skipping -= 1
                if skipping:
                    continue
            elif tag in BLOCKS:
                w.flush()
            w.words.append(el.tail or "")
    w.flush()
    return Converted("\n\n".join(w.lines) + "\n", "html", 0)
