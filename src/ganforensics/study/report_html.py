"""A small builder of self-contained HTML pages (CSS inline, figures inlined as base64 PNG, no
external links): `HtmlReport` holds `Section`s of paragraphs, boxes, tables and figures, on plain
string templates with `html.escape`."""

from __future__ import annotations

import base64
import html
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

CSS = """
body{font-family:system-ui,-apple-system,'Segoe UI',Roboto,sans-serif;max-width:1100px;
margin:2em auto;padding:0 1em;color:#1d1d1f;line-height:1.45}
h1{font-size:1.7em;margin-bottom:.2em}h2{border-bottom:2px solid #d0d7de;padding-bottom:.2em;
margin-top:2em}table{border-collapse:collapse;margin:.6em 0;font-size:.88em}
th,td{border:1px solid #d0d7de;padding:3px 8px;text-align:right}
th{background:#f3f5f7}td.t,th.t{text-align:left}caption{caption-side:bottom;text-align:left;
font-size:.85em;color:#57606a;padding-top:.3em}
.src{font-size:.82em;color:#57606a}.fail{background:#fff1f0;border-left:4px solid #cf222e;
padding:.5em .8em}.note{background:#f6f8fa;border-left:4px solid #8c959f;padding:.5em .8em}
.warn{background:#fff8c5;border-left:4px solid #bf8700;padding:.5em .8em}
pre{background:#f6f8fa;padding:.8em;overflow-x:auto;font-size:.82em}
figure{margin:1em 0}figcaption{font-size:.88em;color:#57606a}
img{max-width:100%;image-rendering:pixelated}.grids{display:flex;flex-wrap:wrap;gap:14px}
.grids figure{margin:0}nav a{margin-right:.8em}
"""


def fmt(value: Any) -> str:
    """A table cell: floats with sensible precision, NaN as an en dash."""
    if isinstance(value, bool) or value is None:
        return "–" if value is None else str(value)
    if isinstance(value, float):
        if math.isnan(value):
            return "–"
        if value != 0 and abs(value) < 0.01:
            return f"{value:.2e}"
        return f"{value:.1f}" if abs(value) >= 100 else f"{value:.3f}"
    return str(value)


@dataclass
class Section:
    """One section of the report; methods append HTML parts."""

    id: str
    title: str
    parts: list[str] = field(default_factory=list)

    def p(self, text: str) -> Section:
        self.parts.append(f"<p>{html.escape(text)}</p>")
        return self

    def box(self, text: str, kind: str = "note") -> Section:
        self.parts.append(f'<div class="{kind}">{html.escape(text)}</div>')
        return self

    def pre(self, text: str) -> Section:
        self.parts.append(f"<pre>{html.escape(text)}</pre>")
        return self

    def items(self, lines: Iterable[str]) -> Section:
        lis = "".join(f"<li>{html.escape(x)}</li>" for x in lines)
        self.parts.append(f"<ul>{lis}</ul>")
        return self

    def links(self, targets: Iterable[tuple[str, str]]) -> Section:
        """A list of links (href, text): relative paths to files beside the page."""
        lis = "".join(f'<li><a href="{html.escape(href)}">{html.escape(text)}</a></li>'
                      for href, text in targets)
        self.parts.append(f"<ul>{lis}</ul>")
        return self

    def table(self, df: pd.DataFrame, caption: str, source: str | None = None) -> Section:
        """A table with a caption saying what it shows and the file its numbers come from."""
        head = "".join(
            f'<th class="{"t" if not pd.api.types.is_numeric_dtype(df[c]) else ""}">'
            f"{html.escape(str(c))}</th>"
            for c in df.columns
        )
        rows = []
        for rec in df.itertuples(index=False):
            cells = "".join(
                f'<td class="{"t" if isinstance(v, str) else ""}">{html.escape(fmt(v))}</td>'
                for v in rec
            )
            rows.append(f"<tr>{cells}</tr>")
        cap = html.escape(caption)
        if source:
            cap += f' <span class="src">Source: <code>{html.escape(source)}</code></span>'
        self.parts.append(
            f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(rows)}</tbody>"
            f"<caption>{cap}</caption></table>"
        )
        return self

    def figure(self, png: bytes | Path, caption: str, source: str | None = None,
               width: int | None = None) -> Section:
        """An inlined PNG figure with a caption."""
        self.parts.append(figure_html(png, caption, source, width))
        return self

    def grids(self, figures: Sequence[tuple[bytes | Path, str]], source: str | None) -> Section:
        """Several small figures side by side."""
        inner = "".join(figure_html(png, cap, None, None) for png, cap in figures)
        src = f'<p class="src">Files: <code>{html.escape(source)}</code></p>' if source else ""
        self.parts.append(f'<div class="grids">{inner}</div>{src}')
        return self

    def html(self) -> str:
        return (f'<section id="{html.escape(self.id)}"><h2>{html.escape(self.title)}</h2>'
                + "".join(self.parts) + "</section>")


def figure_html(png: bytes | Path, caption: str, source: str | None, width: int | None) -> str:
    data = Path(png).read_bytes() if isinstance(png, Path) else png
    b64 = base64.b64encode(data).decode("ascii")
    w = f' width="{int(width)}"' if width else ""
    cap = html.escape(caption)
    if source:
        cap += f' <span class="src">File: <code>{html.escape(source)}</code></span>'
    return (f'<figure><img alt="{html.escape(caption)}"{w} src="data:image/png;base64,{b64}">'
            f"<figcaption>{cap}</figcaption></figure>")


class HtmlReport:
    """A self-contained HTML page built from sections."""

    def __init__(self, title: str, subtitle: str = ""):
        self.title = title
        self.subtitle = subtitle
        self.sections: list[Section] = []

    def section(self, id: str, title: str) -> Section:
        sec = Section(id, title)
        self.sections.append(sec)
        return sec

    def to_html(self) -> str:
        nav = " ".join(f'<a href="#{html.escape(s.id)}">{html.escape(s.title.split(":")[0])}</a>'
                       for s in self.sections)
        body = "\n".join(s.html() for s in self.sections)
        return (
            "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            f"<title>{html.escape(self.title)}</title><style>{CSS}</style></head><body>"
            f"<h1>{html.escape(self.title)}</h1><p>{html.escape(self.subtitle)}</p>"
            f"<nav>{nav}</nav>\n{body}\n</body></html>\n"
        )
