"""The report of a study: ``report.md`` and a self-contained ``report.html`` (figures embedded), plus the
tables as CSV, all computed from the run records.

The document is a list of blocks (heading, paragraph, list, table, figure) rendered twice, to Markdown and to
HTML, so both always say the same. Nothing in it is written for a particular study: counts come from the runs
table, findings from ``analysis.findings``, figures from ``analysis.plots``.
"""

from __future__ import annotations

import base64
import html
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

Block = tuple[str, Any]  # ("h1"|"h2"|"h3"|"p"|"ul"|"table"|"figure", content)


@dataclass
class Document:
    title: str
    blocks: list[Block] = field(default_factory=list)

    def h2(self, text: str) -> None:
        self.blocks.append(("h2", text))

    def h3(self, text: str) -> None:
        self.blocks.append(("h3", text))

    def p(self, text: str) -> None:
        self.blocks.append(("p", text))

    def ul(self, items: list[str]) -> None:
        if items:
            self.blocks.append(("ul", items))

    def table(self, frame: pd.DataFrame) -> None:
        self.blocks.append(("table", frame))

    def figure(self, png: Path, caption: str) -> None:
        self.blocks.append(("figure", (png, caption)))


def cell(value: Any) -> str:
    """A table cell: numbers to 4 significant digits, missing values empty."""
    if value is None or (isinstance(value, float) and pd.isna(value)):
        return ""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def to_markdown(doc: Document, base: Path) -> str:
    """Markdown with figures linked relative to ``base`` (the report's directory)."""
    lines = [f"# {doc.title}", ""]
    for kind, content in doc.blocks:
        if kind in ("h2", "h3"):
            lines += [f"{'#' * int(kind[1])} {content}", ""]
        elif kind == "p":
            lines += [content, ""]
        elif kind == "ul":
            lines += [f"- {item}" for item in content] + [""]
        elif kind == "table":
            frame: pd.DataFrame = content
            lines.append("| " + " | ".join(str(c) for c in frame.columns) + " |")
            lines.append("| " + " | ".join("---" for _ in frame.columns) + " |")
            lines += [
                "| " + " | ".join(cell(v).replace("|", "\\|") for v in row) + " |" for row in frame.itertuples(False)
            ]
            lines.append("")
        elif kind == "figure":
            png, caption = content
            lines += [f"![{caption}]({png.relative_to(base).as_posix()})", "", f"*{caption}*", ""]
    return "\n".join(lines)


def inline_html(text: str) -> str:
    """Escape, then turn `code` spans into <code>."""
    return re.sub(r"`([^`]+)`", r"<code>\1</code>", html.escape(text))


CSS = """
body { font-family: system-ui, sans-serif; max-width: 1100px; margin: 2em auto; padding: 0 1em; color: #222; }
table { border-collapse: collapse; margin: 1em 0; font-size: 0.9em; }
th, td { border: 1px solid #ccc; padding: 0.25em 0.6em; text-align: right; }
th { background: #f3f3f3; }
td:first-child, th:first-child { text-align: left; }
figure { margin: 1.5em 0; } figure img { max-width: 100%; border: 1px solid #eee; }
figcaption { color: #555; font-size: 0.9em; } code { background: #f4f4f4; padding: 0 0.2em; }
"""


def to_html(doc: Document) -> str:
    """One HTML file: CSS inline and every figure embedded as a base64 PNG (opens anywhere, offline)."""
    out = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>{html.escape(doc.title)}</title><style>{CSS}</style></head><body>",
        f"<h1>{html.escape(doc.title)}</h1>",
    ]
    for kind, content in doc.blocks:
        if kind in ("h2", "h3"):
            out.append(f"<{kind}>{inline_html(content)}</{kind}>")
        elif kind == "p":
            out.append(f"<p>{inline_html(content)}</p>")
        elif kind == "ul":
            out.append("<ul>" + "".join(f"<li>{inline_html(i)}</li>" for i in content) + "</ul>")
        elif kind == "table":
            frame = content
            head = "".join(f"<th>{html.escape(str(c))}</th>" for c in frame.columns)
            rows = "".join(
                "<tr>" + "".join(f"<td>{html.escape(cell(v))}</td>" for v in row) + "</tr>"
                for row in frame.itertuples(False)
            )
            out.append(f"<table><thead><tr>{head}</tr></thead><tbody>{rows}</tbody></table>")
        elif kind == "figure":
            png, caption = content
            data = base64.b64encode(Path(png).read_bytes()).decode()
            out.append(
                f'<figure><img alt="{html.escape(caption)}" src="data:image/png;base64,{data}">'
                f"<figcaption>{inline_html(caption)}</figcaption></figure>"
            )
    out.append("</body></html>")
    return "\n".join(out)


def write(doc: Document, out_dir: Path) -> tuple[Path, Path]:
    """Write ``report.md`` and ``report.html`` into ``out_dir`` (each replaced atomically)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = out_dir / "report.md", out_dir / "report.html"
    for path, text in zip(paths, (to_markdown(doc, out_dir), to_html(doc)), strict=True):
        tmp = path.with_suffix(path.suffix + ".tmp")
        tmp.write_text(text, encoding="utf-8")
        tmp.replace(path)
    return paths
