"""Building the console's HTML: escaping, the page frame, tables, forms and inline SVG charts.

Every value that reaches a page goes through `esc` (names, models and reasons are client strings).
Pages load one stylesheet and one script, both under /ui/assets/; nothing else is fetched.
"""

from __future__ import annotations

import datetime
import html
from collections.abc import Iterable, Sequence
from typing import Any

# (path under /ui/, label, who sees it: "admin" = any admin-role key, "all" = any key)
NAV: tuple[tuple[str, str, str], ...] = (
    ("", "Overview", "admin"),
    ("keys", "Keys", "admin"),
    ("tenants", "Teams & users", "admin"),
    ("usage", "Usage", "admin"),
    ("deployments", "Deployments", "admin"),
    ("runs", "Runs", "admin"),
    ("audit", "Audit", "admin"),
    ("access-requests", "Access requests", "admin"),
    ("prompts", "Prompts", "admin"),
    ("guardrails", "Guardrails", "admin"),
    ("cache", "Cache", "admin"),
    ("portal", "Portal", "all"),
)


def esc(value: Any) -> str:
    """Text for HTML (attribute-safe)."""
    return html.escape("" if value is None else str(value), quote=True)


def when(value: Any) -> str:
    """An RFC 3339 string or epoch seconds as `YYYY-MM-DD HH:MM:SS` (UTC)."""
    if value is None or value == "":
        return ""
    if isinstance(value, int | float):
        moment = datetime.datetime.fromtimestamp(value, datetime.UTC)
    else:
        try:
            moment = datetime.datetime.fromisoformat(str(value))
        except ValueError:
            return esc(value)
    return moment.strftime("%Y-%m-%d %H:%M:%S")


def number(value: Any, digits: int = 0) -> str:
    if value is None:
        return ""
    if isinstance(value, float) and digits:
        return f"{value:,.{digits}f}"
    if isinstance(value, int | float):
        return f"{value:,.0f}" if not digits else f"{value:,.{digits}f}"
    return esc(value)


def page(
    title: str,
    body: str,
    *,
    current: str | None = None,
    role: str | None = None,
    csrf: str | None = None,
    who: str | None = None,
) -> bytes:
    """A whole page: the frame (navigation for a signed-in user) around `body`."""
    head = (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{esc(title)} · gatecore</title>"
        '<link rel="stylesheet" href="/ui/assets/console.css">'
        + (f'<meta name="csrf-token" content="{esc(csrf)}">' if csrf else "")
        + '<script src="/ui/assets/console.js" defer></script></head><body>'
        '<a class="skip" href="#main">Skip to content</a>'
    )
    header = '<header><a class="brand" href="/ui/">gatecore</a>'
    if csrf is not None:
        items = []
        for path, label, audience in NAV:
            if audience == "admin" and role is None:
                continue
            mark = ' aria-current="page"' if path == current else ""
            items.append(f'<li><a href="/ui/{path}"{mark}>{esc(label)}</a></li>')
        header += f'<nav aria-label="Console"><ul>{"".join(items)}</ul></nav>'
        header += (
            f'<form class="signout" method="post" action="/ui/sign-out"><span>{esc(who)} '
            f"({esc(role or 'developer')})</span>"
            f'<input type="hidden" name="csrf" value="{esc(csrf)}"><button type="submit">Sign out</button></form>'
        )
    header += "</header>"
    main = f'<main id="main"><h1>{esc(title)}</h1>{body}</main></body></html>'
    return (head + header + main).encode()


def table(
    caption: str, columns: Sequence[str], rows: Iterable[Sequence[str]], *, empty: str = "Nothing yet."
) -> str:
    """A table of already-escaped cells."""
    rows = list(rows)
    if not rows:
        return f'<p class="empty">{esc(empty)}</p>'
    head = "".join(f'<th scope="col">{esc(c)}</th>' for c in columns)
    body = "".join("<tr>" + "".join(f"<td>{cell}</td>" for cell in row) + "</tr>" for row in rows)
    return (
        f'<div class="scroll" tabindex="0" role="region" aria-label="{esc(caption)}">'
        f"<table><caption>{esc(caption)}</caption><thead><tr>{head}</tr></thead>"
        f"<tbody>{body}</tbody></table></div>"
    )


def field(
    name: str, label: str, kind: str = "text", *, required: bool = False, hint: str = "", form: str = ""
) -> str:
    """A labelled input (`data-kind` tells console.js how to send it: text, int, number, list);
    `form` tells apart the ids of several forms on one page."""
    input_type = {"int": "number", "number": "number"}.get(kind, "text")
    step = ' step="any"' if kind == "number" else (' step="1"' if kind == "int" else "")
    req = " required" if required else ""
    ident = f"f-{esc(form)}-{name}" if form else f"f-{name}"
    hint_html = f'<small id="{ident}-hint">{esc(hint)}</small>' if hint else ""
    described = f' aria-describedby="{ident}-hint"' if hint else ""
    return (
        f'<label for="{ident}">{esc(label)}</label>'
        f'<input id="{ident}" name="{name}" type="{input_type}" data-kind="{kind}"{step}{req}{described}>'
        + hint_html
    )


def api_form(method: str, path: str, fields: str, submit: str, *, reveal: bool = False) -> str:
    """A form console.js sends to the admin API as JSON (`reveal`: the answer holds a secret to show
    once, instead of reloading the page)."""
    flag = ' data-reveal="key"' if reveal else ""
    return (
        f'<form class="api" data-method="{esc(method)}" data-path="{esc(path)}"{flag}>'
        f'{fields}<button type="submit">{esc(submit)}</button>'
        '<p class="result" role="status" aria-live="polite"></p></form>'
    )


def api_button(method: str, path: str, label: str, *, confirm: str = "", reveal: bool = False) -> str:
    """A button that sends one admin API call (with an optional confirmation)."""
    extra = f' data-confirm="{esc(confirm)}"' if confirm else ""
    extra += ' data-reveal="key"' if reveal else ""
    return (
        f'<button type="button" class="api-call" data-method="{esc(method)}" data-path="{esc(path)}"'
        f"{extra}>{esc(label)}</button>"
    )


def bar_chart(label: str, points: Sequence[tuple[str, float]], unit: str = "") -> str:
    """An inline SVG bar chart of `points` (label, value), already aggregated on the server."""
    if not points:
        return f'<p class="empty">No data for “{esc(label)}”.</p>'
    width, height, pad = 640, 180, 24
    top = max(value for _, value in points) or 1.0
    step = (width - 2 * pad) / len(points)
    bars = []
    for i, (name, value) in enumerate(points):
        h = (height - 2 * pad) * value / top
        x = pad + i * step
        bars.append(
            f'<rect x="{x + step * 0.1:.1f}" y="{height - pad - h:.1f}" width="{step * 0.8:.1f}" '
            f'height="{h:.1f}"><title>{esc(name)}: {value:,.3g}{esc(unit)}</title></rect>'
        )
    first, last = points[0][0], points[-1][0]
    axis = (
        f'<text x="{pad}" y="{height - 6}">{esc(first)}</text>'
        f'<text x="{width - pad}" y="{height - 6}" text-anchor="end">{esc(last)}</text>'
        f'<text x="{pad}" y="{pad - 8}">max {top:,.4g}{esc(unit)}</text>'
    )
    return (
        f'<figure><svg class="chart" viewBox="0 0 {width} {height}" role="img" aria-label="{esc(label)}">'
        f"{''.join(bars)}{axis}</svg><figcaption>{esc(label)}</figcaption></figure>"
    )


def stat(label: str, value: str) -> str:
    return f'<div class="stat"><dt>{esc(label)}</dt><dd>{value}</dd></div>'


def stats(items: Iterable[str]) -> str:
    return f'<dl class="stats">{"".join(items)}</dl>'
