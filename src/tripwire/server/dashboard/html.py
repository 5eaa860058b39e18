"""The dashboard's page shell, style sheet and small HTML pieces.

Every text that comes from a config or the store goes through :func:`esc`. Pages carry no script
and no inline style (the Content-Security-Policy allows neither); charts are inline SVG.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from html import escape
from urllib.parse import quote

from tripwire import __version__
from tripwire.report.html import format_number
from tripwire.report.trend import CHART_RULES

__all__ = [
    "CSS",
    "badge",
    "esc",
    "href",
    "incident_href",
    "number",
    "page",
    "table",
    "when",
]

CSS = (
    """
:root{--ok:#1a7f37;--ok-bg:#dafbe1;--watch:#9a6700;--watch-bg:#fff8c5;--alert:#cf222e;
--alert-bg:#ffebe9;--grey:#57606a;--grey-bg:#f6f8fa;--line:#d0d7de;--link:#0969da;
--s0:#0969da;--s1:#bf3989;--s2:#1a7f37;--s3:#bc4c00;--s4:#8250df;--s5:#57606a}
*{box-sizing:border-box}
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",sans-serif;color:#1f2328;margin:0}
header.top{background:#24292f;color:#fff;padding:.6rem 1.5rem;display:flex;gap:1.5rem;
align-items:center}
header.top a{color:#fff;text-decoration:none;font-weight:600}
header.top form{margin-left:auto}
header.top button{background:none;border:1px solid #57606a;color:#fff;border-radius:4px;
padding:.15rem .6rem;cursor:pointer}
main{padding:1rem 1.5rem 3rem;max-width:1400px}
a{color:var(--link)}
h1{font-size:1.5rem;margin:.5rem 0}h2{font-size:1.2rem;margin:1.8rem 0 .5rem;
border-bottom:1px solid var(--line);padding-bottom:.3rem}h3{font-size:1rem;margin:1rem 0 .3rem}
table{border-collapse:collapse;margin:.4rem 0}
th,td{border:1px solid var(--line);padding:.25rem .55rem;text-align:left;vertical-align:top}
thead th{background:var(--grey-bg);font-weight:600;white-space:nowrap}
td.num{text-align:right;white-space:nowrap;font-variant-numeric:tabular-nums}
.when{white-space:nowrap}
.badge{display:inline-block;border-radius:1rem;padding:.05rem .6rem;font-weight:600;
font-size:.9em;white-space:nowrap}
.st-ok{color:var(--ok);background:var(--ok-bg)}
.st-watch{color:var(--watch);background:var(--watch-bg)}
.st-alert,.st-error,.st-dead,.st-page{color:var(--alert);background:var(--alert-bg)}
.st-no_data,.st-info,.st-insufficient_labels,.st-resolved,.st-digest,.st-pending{
color:var(--grey);background:var(--grey-bg)}
.st-open,.st-ticket{color:var(--watch);background:var(--watch-bg)}
.st-delivered{color:var(--ok);background:var(--ok-bg)}
.muted{color:var(--grey)}.small{font-size:.85em}
.layers{display:flex;gap:.4rem;flex-wrap:wrap}
.cards{display:grid;grid-template-columns:repeat(auto-fill,minmax(330px,1fr));gap:1rem}
.card{border:1px solid var(--line);border-radius:6px;padding:.6rem .8rem}
.card h3{margin-top:0}
"""
    + CHART_RULES
    + """.legend{color:var(--grey)}
.key.band{height:.8em;vertical-align:-.1em;background:#0969da22}
.key.ref{height:.8em;vertical-align:-.1em;background:#8c959f}
svg .band{fill:#0969da;fill-opacity:.12;stroke:none}
svg .shade{fill:var(--alert);fill-opacity:.08}
svg .ref{fill:#8c959f}svg .cur{fill:var(--s0)}
svg.spark .ln{stroke:var(--s0);stroke-width:1.2}
details{margin:.2rem 0}summary{cursor:pointer}
.runbook dt{font-weight:600;margin-top:.4rem}.runbook dd{margin:.1rem 0 .3rem 1rem}
.facts{display:grid;grid-template-columns:max-content 1fr;gap:.2rem 1rem}
.facts dt{color:var(--grey)}.facts dd{margin:0}
.hists{display:flex;flex-wrap:wrap;gap:1rem}
nav.range a,nav.segments a{margin-right:.6rem}
nav.range a.on,nav.segments a.on{font-weight:700;text-decoration:none;color:#1f2328}
form.login{max-width:24rem;margin:3rem auto;border:1px solid var(--line);border-radius:6px;
padding:1.2rem}
form.login input{width:100%;padding:.35rem;margin:.4rem 0 .8rem;font:inherit}
form.login button{padding:.35rem 1rem;font:inherit}
.error{color:var(--alert)}
"""
)
"""The dashboard's style sheet; the charts' rules are the reports' (:data:`CHART_RULES`)."""


def esc(value: object) -> str:
    """Text for HTML (element content or a quoted attribute)."""
    return escape(str(value), quote=True)


def href(*parts: str, **query: object) -> str:
    """A dashboard URL from path parts (each quoted) and a query string."""
    path = "/dashboard" + "".join("/" + quote(p, safe="") for p in parts)
    given = [(k, v) for k, v in query.items() if v is not None]
    if given:
        path += "?" + "&".join(f"{k}={quote(str(v), safe='')}" for k, v in given)
    return path


def incident_href(model: str, key: str) -> str:
    """An incident's page; its dedup key keeps its slashes (``model/rule/feature/...``)."""
    return href("models", model, "incidents") + "/" + quote(key, safe="/:=")


def number(value: float | int | None, digits: int = 3) -> str:
    return format_number(value, digits)


def when(moment: datetime | None, with_time: bool = False) -> str:
    if moment is None:
        return "\u2014"
    if with_time or (moment.hour, moment.minute) != (0, 0):
        return f"{moment:%Y-%m-%d %H:%M}"
    return f"{moment:%Y-%m-%d}"


def badge(text: str, state: str | None = None, title: str | None = None) -> str:
    tip = f' title="{esc(title)}"' if title else ""
    return f'<span class="badge st-{esc(state or text)}"{tip}>{esc(text)}</span>'


def table(
    headers: Sequence[str], rows: Iterable[Sequence[str]], numeric: Sequence[int] = ()
) -> str:
    """A table from already escaped cells; ``numeric`` columns align right."""
    head = "".join(f"<th>{esc(h)}</th>" for h in headers)
    body = "".join(
        "<tr>"
        + "".join(
            f'<td class="num">{cell}</td>' if i in numeric else f"<td>{cell}</td>"
            for i, cell in enumerate(row)
        )
        + "</tr>"
        for row in rows
    )
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def page(title: str, body: str, *, signed_in: bool = True) -> str:
    logout = (
        '<form method="post" action="/dashboard/logout"><button type="submit">Sign out'
        "</button></form>"
        if signed_in
        else ""
    )
    return (
        '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width,initial-scale=1">'
        f"<title>{esc(title)} \u00b7 tripwire</title>"
        '<link rel="icon" href="data:,">'
        '<link rel="stylesheet" href="/dashboard/static/dashboard.css"></head><body>'
        '<header class="top"><a href="/dashboard">tripwire</a>'
        f'<span class="muted small">{esc(__version__)}</span>{logout}</header>'
        f"<main>{body}</main></body></html>"
    )
