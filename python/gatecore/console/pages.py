"""The console's pages: each reads the admin API (as the signed-in caller) and renders HTML.

Changes are not made here: a page's forms and buttons call the admin API from the browser
(console.js, with the session's CSRF token), so the console can do nothing the API would refuse.
"""

from __future__ import annotations

import datetime
import time
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import quote, urlencode

import orjson

from gatecore.console import queries
from gatecore.console.html import (
    api_button,
    api_form,
    bar_chart,
    esc,
    field,
    number,
    stat,
    stats,
    table,
    when,
)
from gatecore.errors import Forbidden, NotFound
from gatecore.store.base import Store

KEYS_PER_PAGE = 100
Read = Callable[[str, str], Awaitable[Any]]  # (admin path, query string) → decoded JSON


class View:
    """What a page needs: the caller's reads of the admin API, its team scope, the store (for the
    ledger aggregates) and the query string."""

    def __init__(
        self,
        read: Read,
        scope: str | None,
        store: Store,
        query: dict[str, str],
        models: Callable[[bool], Any],
        rollup: queries.Rollup,
    ):
        self.rollup = rollup
        self.prompt_docs: Callable[[], Awaitable[list[tuple[str, bytes]]]] = _no_prompts
        self.read = read
        self.scope = scope
        self.store = store
        self.query = query
        self.models = models


async def _no_prompts() -> list[tuple[str, bytes]]:
    return []


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:,.1f} ms"


async def overview(view: View) -> str:
    now = time.time()
    now_hour = int(now // 3600)
    hours = await view.rollup.hours(view.store, view.scope, "model", now_hour - 23, now_hour)
    models = queries.totals(hours)
    requests = sum(g[2] for g in models)
    errors = sum(g[3] for g in models)
    cost = sum(g[6] for g in models)
    this_hour = hours.get(now_hour, [])
    hour_requests = sum(g[2] for g in this_hour)
    hour_tokens = sum(g[4] + g[5] for g in this_hour)
    sample = await queries.latency_sample(view.store, view.scope, now - 86_400)
    latencies = [s[0] for s in sample]
    ttfts = [s[1] for s in sample if s[1] is not None]
    p = queries.percentile
    error_rate = f"{100 * errors / requests:.2f} %" if requests else "-"
    elapsed = max(1.0, now - now_hour * 3600)
    figures = stats(
        [
            stat("Requests (24 h)", number(requests)),
            stat("Requests/s (this hour)", f"{hour_requests / elapsed:.3f}"),
            stat("Error rate", error_rate),
            stat("Latency p50 / p99", f"{_ms(p(latencies, 0.5))} / {_ms(p(latencies, 0.99))}"),
            stat("TTFT p50 / p99", f"{_ms(p(ttfts, 0.5))} / {_ms(p(ttfts, 0.99))}"),
            stat("Tokens/s (this hour)", f"{hour_tokens / elapsed:.2f}"),
            stat("Spend (24 h)", f"${cost:,.4f}"),
        ]
    )
    points = [
        (
            datetime.datetime.fromtimestamp(h * 3600, datetime.UTC).strftime("%H:00"),
            float(sum(g[2] for g in hours.get(h, []))),
        )
        for h in range(now_hour - 23, now_hour + 1)
    ]
    chart = bar_chart("Requests per hour, last 24 hours (UTC)", points)
    rows = [[esc(g[0]), number(g[2]), number(g[3]), number(g[4] + g[5]), f"${g[6]:,.4f}"] for g in models]
    by_model = table("By model, last 24 hours", ["Model", "Requests", "Errors", "Tokens", "Cost"], rows)
    note = (
        '<p class="note">Percentiles are over the newest '
        f"{queries.SAMPLE_ROWS:,} requests of the last 24 hours.</p>"
    )
    return figures + chart + by_model + note


async def keys(view: View) -> str:
    listed = (await view.read("/keys", ""))["data"]
    pages = max(1, -(-len(listed) // KEYS_PER_PAGE))
    number_ = view.query.get("page", "1")
    at = min(pages, max(1, int(number_) if number_.isdigit() else 1))
    rows = []
    for k in listed[(at - 1) * KEYS_PER_PAGE : at * KEYS_PER_PAGE]:
        actions = ""
        if k["status"] == "active":
            actions = (
                api_button("POST", f"/admin/v1/keys/{k['id']}/rotate", "Rotate", reveal=True)
                + api_button(
                    "DELETE", f"/admin/v1/keys/{k['id']}", "Revoke", confirm=f"Revoke the key {k['name']}?"
                )
                + _edit_key(k["id"])
            )
        rows.append(
            [
                esc(k["name"]),
                f"<code>{esc(k['prefix'])}…</code>",
                esc(k["status"]),
                esc(k["role"] or ""),
                esc(k["team_id"] or ""),
                esc(", ".join(k["models"]) if k["models"] is not None else "all"),
                number(k["rpm"]),
                number(k["budget_usd"], 2),
                when(k["created_at"]),
                actions,
            ]
        )
    create = api_form(
        "POST",
        "/admin/v1/keys",
        field("name", "Name", required=True)
        + field("models", "Models", "list", hint="comma-separated; empty: every model")
        + field("rpm", "Requests per minute", "int")
        + field("budget_usd", "Budget (USD)", "number")
        + '<label for="f-role">Role</label><select id="f-role" name="role" data-kind="text">'
        '<option value="">none (inference)</option><option>viewer</option><option>team_admin</option>'
        "<option>admin</option></select>",
        "Create key",
        reveal=True,
    )
    columns = ["Name", "Prefix", "Status", "Role", "Team", "Models", "RPM", "Budget", "Created", "Actions"]
    return (
        '<section aria-labelledby="new-key"><h2 id="new-key">New key</h2>'
        f"{create}</section>"
        '<div class="secret" hidden role="alert" tabindex="-1"><h2>Copy this key now</h2>'
        "<p>It is shown only this once.</p><output></output></div>"
        + table("Keys", columns, rows)
        + _pager("/ui/keys", at, pages, "Keys pages")
    )


def _edit_key(key_id: str) -> str:
    """The key's limits and models, changed with PATCH (an empty field stays as it is)."""
    fields = (
        field("models", "Models", "list", form=key_id, hint="comma-separated")
        + field("rpm", "RPM", "int", form=key_id)
        + field("tpm", "TPM", "int", form=key_id)
        + field("budget_usd", "Budget (USD)", "number", form=key_id)
    )
    return (
        '<details class="edit"><summary>Edit</summary>'
        f"{api_form('PATCH', f'/admin/v1/keys/{key_id}', fields, 'Save')}</details>"
    )


def _pager(path: str, at: int, pages: int, label: str) -> str:
    links = []
    if at > 1:
        links.append(f'<a rel="prev" href="{path}?page={at - 1}">Previous</a>')
    links.append(f"<span>Page {at} of {pages}</span>")
    if at < pages:
        links.append(f'<a rel="next" href="{path}?page={at + 1}">Next</a>')
    return f'<nav class="pager" aria-label="{esc(label)}">{" ".join(links)}</nav>'


async def tenants(view: View) -> str:
    parts = []
    for plural, title in (("orgs", "Organizations"), ("teams", "Teams"), ("users", "Users")):
        try:
            listed = (await view.read(f"/{plural}", ""))["data"]
        except Forbidden:
            continue
        rows = [
            [
                esc(t["name"]),
                f"<code>{esc(t['id'])}</code>",
                esc(t["parent_id"] or ""),
                esc(", ".join(t["models"]) if t["models"] is not None else "all"),
                number(t["budget_usd"], 2),
            ]
            for t in listed[:2000]
        ]
        parts.append(table(title, ["Name", "Id", "Parent", "Models", "Budget"], rows))
    create = api_form("POST", "/admin/v1/teams", field("name", "Team name", required=True), "Create team")
    return (
        "".join(parts)
        + f'<section aria-labelledby="new-team"><h2 id="new-team">New team</h2>{create}</section>'
    )


GROUPS = ("key", "team", "user", "model", "deployment", "day")
_GROUP_FIELDS = ("group", "name", "requests", "errors", "input_tokens", "output_tokens", "cost_usd")


async def usage(view: View) -> str:
    q = view.query
    group_by = q.get("group_by", "model") if q.get("group_by") in GROUPS else "model"
    now = time.time()
    now_hour = int(now // 3600)
    days = max(1, min(366, int(q["days"]) if q.get("days", "").isdigit() else 7))
    first_hour = now_hour - days * 24 + 1
    since, until = first_hour * 3600.0, now + 1
    report_query = urlencode({"group_by": group_by, "from": f"{since:.0f}", "to": f"{until:.0f}"})
    if group_by in queries.ROLLUP_GROUPS:
        # The same totals as the report's, from the store's hourly rollup (usage_hourly).
        hours = await view.rollup.hours(view.store, view.scope, group_by, first_hour, now_hour)
        ordered = queries.totals(hours)
        if group_by == "day":
            ordered.sort(key=lambda g: str(g[0]))
        groups: list[dict[str, Any]] = [dict(zip(_GROUP_FIELDS, g, strict=True)) for g in ordered]
    else:
        groups = (await view.read("/usage", report_query))["data"]
    options = "".join(f"<option{' selected' if g == group_by else ''}>{g}</option>" for g in GROUPS)
    picker = (
        '<form class="filters" method="get" action="/ui/usage">'
        f'<label for="group_by">Group by</label><select id="group_by" name="group_by">{options}</select>'
        f'<label for="days">Days</label><input id="days" name="days" type="number" min="1" max="366" value="{days}">'
        '<button type="submit">Show</button>'
        f' <a href="/admin/v1/usage?{esc(report_query)}&amp;format=csv" download="usage.csv">Export CSV</a></form>'
    )
    rows = [
        [
            esc(g["name"] or g["group"] or "-"),
            number(g["requests"]),
            number(g["input_tokens"]),
            number(g["output_tokens"]),
            number(g["errors"]),
            f"${g['cost_usd']:,.4f}",
        ]
        for g in groups[:1000]
    ]
    report = table(
        f"Usage by {group_by}, last {days} days",
        [group_by.title(), "Requests", "Input tokens", "Output tokens", "Errors", "Cost"],
        rows,
    )
    chart = bar_chart(
        f"Cost by {group_by} (USD), last {days} days",
        [(str(g["name"] or g["group"]), float(g["cost_usd"])) for g in groups[:40]],
    )
    before = None
    if "before" in q:
        at, _, row_id = q["before"].partition("|")
        try:
            before = (float(at), row_id[:200])
        except ValueError:
            before = None
    page = await queries.requests_page(view.store, view.scope, since, until, before)
    more = len(page) > queries.PAGE_ROWS
    page = page[: queries.PAGE_ROWS]
    request_rows = [
        [
            when(r[0]),
            f"<code>{esc(r[2])}</code>",
            esc(r[3]),
            esc(r[4] or ""),
            esc(r[5] or ""),
            esc(r[6]),
            number(r[7]),
            number(r[8]),
            f"${float(r[9]):,.6f}",
            _ms(r[10]),
        ]
        for r in page
    ]
    requests = table(
        "Requests, newest first",
        ["At", "Request", "Model", "Key", "Team", "Status", "In", "Out", "Cost", "Latency"],
        request_rows,
    )
    nav = '<nav class="pager" aria-label="Requests pages">'
    if before is not None:
        nav += f'<a href="/ui/usage?{esc(urlencode({"group_by": group_by, "days": days}))}">Newest</a> '
    if more and page:
        cursor = f"{page[-1][0]!r}|{page[-1][1]}"
        older = urlencode({"group_by": group_by, "days": days, "before": cursor})
        nav += f'<a rel="next" href="/ui/usage?{esc(older)}">Older requests</a>'
    nav += "</nav>"
    return picker + chart + report + "<h2>Requests</h2>" + requests + nav


async def deployments(view: View) -> str:
    data = await view.read("/deployments", "")
    rows = [
        [
            esc(d["model"]),
            esc(d["deployment"]),
            esc(d["provider"]),
            "healthy" if d["healthy"] else "unhealthy",
            esc(d["state"]),
            number(d["inflight"]),
            _ms(d["ttft_ms"]),
            esc(
                f"running {d['engine']['running']:g}, waiting {d['engine']['waiting']:g}"
                if d.get("engine")
                else ""
            ),
            number(d["successes"]),
            number(d["failures"]),
        ]
        for d in data.get("data", [])[:2000]
    ]
    columns = [
        "Model",
        "Deployment",
        "Provider",
        "Health",
        "Breaker",
        "In flight",
        "TTFT",
        "Engine",
        "OK",
        "Failed",
    ]
    return table("Deployments (as this worker sees them)", columns, rows)


async def runs(view: View) -> str:
    run_id = view.query.get("id")
    if run_id:
        s = await view.read(f"/runs/{run_id[:128]}", "")
        figures = stats(
            [
                stat("Requests", number(s["requests"])),
                stat("Errors", number(s["errors"])),
                stat("Requests/s", f"{s['requests_per_s']:.2f}"),
                stat("Output tokens/s", f"{s['output_tokens_per_s']:.1f}"),
                stat("Duration", f"{s['duration_s']:.1f} s"),
            ]
        )
        charts = ""
        for name, label in (
            ("ttft_ms", "TTFT"),
            ("itl_ms", "Inter-token latency"),
            ("latency_ms", "Latency"),
        ):
            d = s[name]
            points = [(p, float(d[p] or 0.0)) for p in ("min", "p50", "p90", "p99", "max")]
            charts += bar_chart(f"{label} distribution (ms) of run {run_id}", points, " ms")
        return figures + charts + '<p><a href="/ui/runs">All runs</a></p>'
    listed = (await view.read("/runs", "limit=100"))["data"]
    rows = [
        [
            f'<a href="/ui/runs?{esc(urlencode({"id": r["run_id"]}))}">{esc(r["run_id"])}</a>',
            number(r["requests"]),
            when(r["first_at"]),
            when(r["last_at"]),
        ]
        for r in listed
    ]
    return table("Benchmark runs", ["Run", "Requests", "First", "Last"], rows)


async def audit(view: View) -> str:
    listed = (await view.read("/audit", "limit=200"))["data"]
    rows = [
        [
            when(a["at"]),
            esc(a["actor"]),
            esc(a["action"]),
            esc(a["target_type"]),
            f"<code>{esc(a['target_id'])}</code>",
            f"<code>{esc(orjson.dumps(a['detail']).decode()[:300])}</code>",
        ]
        for a in listed
    ]
    return table("The newest 200 admin actions", ["At", "Actor", "Action", "Type", "Target", "Detail"], rows)


async def access_requests(view: View) -> str:
    listed = (await view.read("/access-requests", ""))["data"]
    rows = []
    for r in listed:
        actions = ""
        if r["status"] == "pending":
            actions = api_button(
                "POST", f"/admin/v1/access-requests/{r['id']}/approve", "Approve"
            ) + api_button("POST", f"/admin/v1/access-requests/{r['id']}/reject", "Reject")
        rows.append(
            [
                when(r["created_at"]),
                esc(r["requester_name"]),
                esc(r["team_id"] or ""),
                esc(", ".join(r["models"] + r["prompts"])),
                esc(r["reason"]),
                esc(r["status"]),
                f"<code>{esc(r['prefix'] or '')}</code>",
                actions,
            ]
        )
    columns = ["Asked", "By", "Team", "Models and prompts", "Reason", "Status", "Key", "Decide"]
    return table("Access requests", columns, rows, empty="No access requests.")


async def guardrails(view: View) -> str:
    found = await queries.guardrail_actions(view.store, view.scope, time.time() - 86_400)
    rows = [
        [esc(guard), esc(kind), esc(action), number(times)]
        for (guard, kind, action), times in sorted(found.items(), key=lambda item: -item[1])
    ]
    return table(
        "What the guardrails did, last 24 hours",
        ["Guardrail", "Type", "Action", "Times"],
        rows,
        empty="No guardrail acted in the last 24 hours.",
    )


async def prompts(view: View) -> str:
    name = view.query.get("name")
    if name:
        return await _prompt(view, name[:100])
    listed = (await view.read("/prompts", ""))["data"]
    rows = [
        [
            f'<a href="/ui/prompts?{urlencode({"name": p.get("name") or ""})}">{esc(p.get("name"))}</a>',
            esc(p.get("kind")),
            esc(p.get("team_id") or ""),
            number(p.get("latest")),
        ]
        for p in listed[:2000]
    ]
    return table("Published prompts", ["Name", "Kind", "Team", "Latest version"], rows, empty="No prompts.")


async def _prompt(view: View, name: str) -> str:
    """One prompt: its labels, its versions with their figures, and a diff of two versions (the
    admin API's `/prompts/{name}`, `/stats` and `/diff`, read as the signed-in caller)."""
    path = "/prompts/" + quote(name, safe="")
    try:
        head = await view.read(path, "")
    except (NotFound, Forbidden):
        return f'<p class="empty">No prompt named <code>{esc(name)}</code> that you may see.</p>'
    labels = [
        [
            esc(label),
            esc(", ".join(f"v{v} ({w:g})" for v, w in spec["versions"].items())),
            esc(spec["sticky"] or "no"),
        ]
        for label, spec in sorted(head["labels"].items())
    ]
    figures = {row["version"]: row for row in (await view.read(path + "/stats", ""))["data"]}
    versions = []
    for v in reversed(head["versions"][-200:]):
        f = figures.get(v["version"], {})
        versions.append(
            [
                number(v["version"]),
                esc(v.get("description") or ""),
                esc(v["created_by"]),
                when(v["created_at"]),
                number(f.get("requests", 0)),
                number(f.get("errors", 0)),
                _ms(f.get("latency_ms_mean")),
                _ms(f.get("ttft_ms_mean")),
                number(f.get("cost_usd", 0.0), 4),
            ]
        )
    diff_query = {k: view.query[k][:10] for k in ("from", "to") if view.query.get(k, "").isdigit()}
    diff_html = ""
    if head["latest"] >= 2 or diff_query:
        diff = await view.read(path + "/diff", urlencode(diff_query))
        shown = esc(diff["diff"]) or "(no change)"
        diff_html = f"<h2>Diff v{diff['from']} → v{diff['to']}</h2><pre><code>{shown}</code></pre>"
    columns = ["Version", "Description", "By", "Created", "Requests", "Errors", "Latency", "TTFT", "Cost USD"]
    return (
        f"<h2>{esc(name)}</h2>"
        + table("Labels", ["Label", "Versions (weight)", "Sticky"], labels, empty="No labels.")
        + table("Versions", columns, versions)
        + diff_html
    )


async def cache(view: View) -> str:
    try:
        data = await view.read("/cache", "")
    except NotFound as off:
        return f'<p class="empty">{esc(off.message)}</p>'
    except Forbidden:
        return '<p class="empty">The cache figures are for global callers only.</p>'
    rows = [[esc(name), esc(value)] for name, value in data.items() if not isinstance(value, dict | list)]
    return table("Response cache (this worker)", ["Figure", "Value"], rows)


async def portal(view: View, base_url: str) -> str:
    everything = view.models(False)
    mine = {m["id"] for m in view.models(True)}
    rows = [
        [
            f"<code>{esc(m['id'])}</code>",
            number(m.get("context_window")),
            esc(", ".join(c for c, on in (m.get("capabilities") or {}).items() if on)),
            f"${m['price'][0]:,.2f} / ${m['price'][1]:,.2f}" if m.get("price") else "",
            "yes" if m["id"] in mine else "no",
        ]
        for m in everything
    ]
    columns = ["Model", "Context window", "Capabilities", "USD per 1M tokens in / out", "Your key may use it"]
    catalogue = table("Models", columns, rows)
    example_model = esc(next(iter(sorted(mine)), everything[0]["id"] if everything else "MODEL"))
    examples = (
        "<h2>Calling a model</h2>"
        f"<h3>curl</h3><pre><code>curl {esc(base_url)}/v1/chat/completions \\\n"
        '  -H "Authorization: Bearer $GATECORE_KEY" -H "content-type: application/json" \\\n'
        f'  -d \'{{"model": "{example_model}", "messages": [{{"role": "user", "content": "Hi"}}]}}\''
        "</code></pre>"
        "<h3>OpenAI SDK (Python)</h3><pre><code>from openai import OpenAI\n"
        f'client = OpenAI(base_url="{esc(base_url)}/v1", api_key=GATECORE_KEY)\n'
        f'client.chat.completions.create(model="{example_model}", messages=[{{"role": "user", "content": "Hi"}}])'
        "</code></pre>"
        "<h3>Anthropic SDK (Python)</h3><pre><code>from anthropic import Anthropic\n"
        f'client = Anthropic(base_url="{esc(base_url)}", api_key=GATECORE_KEY)\n'
        f'client.messages.create(model="{example_model}", max_tokens=256, messages=[{{"role": "user", "content": "Hi"}}])'
        "</code></pre>"
    )
    documents = await view.prompt_docs()
    prompt_part = "<h2>Published prompts</h2>"
    if not documents:
        prompt_part += '<p class="empty">No published prompt you may call.</p>'
    for name, document in documents:
        prompt_part += (
            f"<h3><code>{esc(name)}</code></h3><pre><code>curl {esc(base_url)}/v1/prompts/{esc(name)} \\\n"
            '  -H "Authorization: Bearer $GATECORE_KEY" -H "content-type: application/json" \\\n'
            """  -d '{"variables": {}}'</code></pre>"""
            f"<details><summary>OpenAPI document of {esc(name)}</summary><pre><code>"
            f"{esc(orjson.dumps(orjson.loads(document), option=orjson.OPT_INDENT_2).decode())}</code></pre></details>"
        )
    ask = api_form(
        "POST",
        "/admin/v1/access-requests",
        field("models", "Models", "list", required=True, hint="comma-separated model names")
        + field("reason", "Reason", required=True),
        "Request access",
    )
    listed = (await view.read("/access-requests", ""))["data"]
    mine_rows = [
        [
            when(r["created_at"]),
            esc(", ".join(r["models"] + r["prompts"])),
            esc(r["status"]),
            esc(r["decision_reason"] or ""),
            api_button("GET", f"/admin/v1/access-requests/{r['id']}", "Show key", reveal=True)
            if r["status"] == "approved"
            else "",
        ]
        for r in listed
    ]
    requests = table(
        "Access requests", ["Asked", "For", "Status", "Note", "Key"], mine_rows, empty="No requests yet."
    )
    return (
        catalogue
        + examples
        + prompt_part
        + f'<section aria-labelledby="ask"><h2 id="ask">Request access</h2>{ask}</section>'
        + '<div class="secret" hidden role="alert" tabindex="-1"><h2>Copy this key now</h2>'
        "<p>It is shown only this once.</p><output></output></div>" + requests
    )


PAGES: dict[str, Callable[[View], Awaitable[str]]] = {
    "": overview,
    "keys": keys,
    "tenants": tenants,
    "usage": usage,
    "deployments": deployments,
    "runs": runs,
    "audit": audit,
    "access-requests": access_requests,
    "prompts": prompts,
    "guardrails": guardrails,
    "cache": cache,
}
TITLES = {
    "": "Overview",
    "keys": "Keys",
    "tenants": "Teams & users",
    "usage": "Usage",
    "deployments": "Deployments",
    "runs": "Benchmark runs",
    "audit": "Audit log",
    "access-requests": "Access requests",
    "prompts": "Prompts",
    "guardrails": "Guardrail events",
    "cache": "Cache",
    "portal": "Developer portal",
}
