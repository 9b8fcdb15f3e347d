"""The HTTP screen: the deployment's HTTP-action routes, a request builder, the CORS audit and
the `.convex.site` domain check (issue 9).

Routes come from the function spec (`HttpAction` entries); requests go to the connection's
site URL (or a full URL typed in the path field, which gets the domain diagnosis) through
`DeploymentClient.http_request`; the Bearer token set by the Auth screen (`app.bearer_token`)
is sent when "Bearer" is on. Saved requests live in the profile's UI state (`http` → `saved`).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.message import Message
from textual.widgets import (
    Button, Checkbox, DataTable, Input, Label, OptionList, Select, Static, TabbedContent, TabPane, TextArea,
)
from textual.widgets.option_list import Option

from console import cors_audit
from console.client import ClientError
from console.tokens import mask_token
from screens.base import ConsoleScreen

METHODS = ["GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "HEAD"]
BODY_KINDS = [("JSON body", "json"), ("Text body", "text"), ("File body", "file"), ("No body", "none")]
STATE_KEY = "http"  # the screen's saved UI state (screens.session_state.ui_state)
MAX_SAVED = 50
VIEW_BYTES = 64 * 1024  # the response body shown; the rest is counted, not kept
MAX_FILE_BYTES = 20 << 20
MARK = {True: "✓", False: "✗"}


def make_screen() -> "HttpScreen":
    return HttpScreen()


@dataclass
class RoutesLoaded(Message):
    routes: list[tuple[str, str]]
    error: str = ""


@dataclass
class ResponseArrived(Message):
    exchange: Any  # http_requests.HttpExchange | None
    error: str = ""
    diagnosis: str = ""


@dataclass
class AuditDone(Message):
    report: cors_audit.AuditReport


def route_label(method: str, path: str) -> str:
    return f"{method:<7} {path}"


def parse_header_lines(text: str) -> list[tuple[str, str]]:
    """`Name: value` per line; blank lines and `#` comments skipped. Raises ValueError."""
    pairs = []
    for number, line in enumerate(text.splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        name, colon, value = line.partition(":")
        if not colon or not name.strip() or any(c.isspace() for c in name.strip()):
            raise ValueError(f"header line {number}: expected `Name: value`")
        pairs.append((name.strip(), value.strip()))
    return pairs


def probe_cell(probe: cors_audit.Probe) -> Text:
    if probe.error:
        return Text("no answer", style="red")
    flags = "".join("✓" if probe.present.get(h) else "·" for h in cors_audit.SEED_HEADERS)
    return Text(f"{probe.status} {flags}", style="red" if probe.blocked else "green")


def audit_detail(audit: cors_audit.RouteAudit) -> Text:
    text = Text()
    text.append(f"{audit.method} {audit.route}", style="bold")
    text.append(f"  ({audit.path})\n", style="dim")
    for probe in audit.probes:
        text.append(f"{probe.label:<20}", style="bold")
        if probe.error:
            text.append(f"{probe.error}\n", style="red")
            continue
        text.append(f"{probe.status:<5}")
        for header in cors_audit.SEED_HEADERS:
            present = probe.present.get(header)
            text.append(f"{MARK[bool(present)]} {cors_audit.short(header)}  ", style="green" if present else "red")
        text.append("\n")
        for problem in probe.problems:
            text.append(f"    ✗ {problem}\n", style="red")
    if audit.fix:
        text.append("Fix: ", style="bold yellow")
        text.append(audit.fix + "\n")
    return text


class HttpScreen(ConsoleScreen):
    BINDINGS = [
        Binding("ctrl+r", "send", "Send", priority=True, id="http.send"),
        Binding("f2", "audit_route", "Audit route", id="http.audit-route"),
        Binding("f3", "audit_all", "Audit all", id="http.audit-all"),
        Binding("f4", "save_request", "Save", id="http.save"),
        Binding("f5", "reload", "Reload routes", show=False, id="http.reload"),
        Binding("delete", "delete_saved", "Delete saved", show=False, id="http.delete-saved"),
        Binding("escape", "back", "Back", show=False, id="http.back"),
    ]

    def __init__(self) -> None:
        super().__init__()
        self.routes: list[tuple[str, str]] = []
        self.last_exchange: Any = None
        self.last_error = ""
        self.report: cors_audit.AuditReport | None = None
        self.sending = False
        self.auditing = False

    # -- layout --------------------------------------------------------------------

    def compose_body(self) -> ComposeResult:
        yield Static("", id="http-top")
        with Horizontal(id="http-body"):
            with Vertical(id="http-left"):
                yield Label("Routes (f5 reload)", classes="http-heading")
                yield OptionList(id="http-routes")
                yield Label("Saved requests (f4 save, del remove)", classes="http-heading")
                yield OptionList(id="http-saved")
            with Vertical(id="http-main"):
                with Horizontal(id="http-reqbar"):
                    yield Select([(m, m) for m in METHODS], value="GET", allow_blank=False, id="http-method")
                    yield Input(placeholder="/path or a full URL", id="http-path")
                    yield Button("Send ctrl+r", variant="primary", id="http-send")
                with Horizontal(id="http-reqbar2"):
                    yield Input(placeholder="query: a=1&b=2", id="http-query")
                    yield Select(BODY_KINDS, value="json", allow_blank=False, id="http-body-kind")
                    yield Checkbox("Bearer", value=True, id="http-bearer")
                with TabbedContent(id="http-tabs", initial="http-request"):
                    with TabPane("Request", id="http-request"):
                        yield Label("Headers (Name: value per line)", classes="http-heading")
                        yield TextArea("", id="http-headers", soft_wrap=True)
                        yield Label("Body", classes="http-heading")
                        yield TextArea("", id="http-body-text", soft_wrap=True)
                        yield Input(placeholder="file to send as the body", id="http-file")
                        yield Static("", id="http-auth-note")
                    with TabPane("Response", id="http-response"):
                        yield Static("Nothing sent yet.", id="http-status")
                        with VerticalScroll(id="http-response-scroll"):
                            yield Static("", id="http-response-headers", markup=False)
                            yield Static("", id="http-response-body", markup=False)
                    with TabPane("CORS audit", id="http-audit"):
                        yield Static("F2 audits the selected route, F3 all routes: preflight, the real request "
                                     "and a provoked error, as a browser sends them.", id="http-audit-state")
                        yield DataTable(id="http-audit-table", cursor_type="row", zebra_stripes=True)
                        with VerticalScroll(id="http-audit-scroll"):
                            yield Static("", id="http-audit-detail")

    def on_mount(self) -> None:
        table = self.query_one("#http-audit-table", DataTable)
        table.add_columns("Route", "Verdict", "Preflight", "Request", "Error", "OPTIONS")
        self.query_one("#http-file", Input).display = False
        self._show_top()
        self._show_auth()
        self._show_saved()
        self.load_routes()

    def on_screen_resume(self) -> None:
        if self.is_mounted:
            self._show_auth()

    # -- routes ----------------------------------------------------------------------

    @work(exclusive=True, exit_on_error=False, group="http-routes")
    async def load_routes(self) -> None:
        try:
            specs = await self.app.client.api_spec()
        except ClientError as error:
            self.post_message(RoutesLoaded([], str(error)))
            return
        self.post_message(RoutesLoaded(cors_audit.http_routes(specs)))

    def on_routes_loaded(self, message: RoutesLoaded) -> None:
        self.routes = message.routes
        routes = self.query_one("#http-routes", OptionList)
        routes.clear_options()
        if message.error:
            routes.add_option(Option(Text(f"Could not list routes: {message.error}", style="red"), disabled=True))
        elif not message.routes:
            routes.add_option(Option(Text("No HTTP routes (no convex/http router).", style="dim"), disabled=True))
        for method, path in message.routes:
            style = "dim" if method == "OPTIONS" else ""
            routes.add_option(Option(Text(route_label(method, path), style=style), id=f"{method} {path}"))
        self._show_top()

    @on(OptionList.OptionSelected, "#http-routes")
    def _route_chosen(self, event: OptionList.OptionSelected) -> None:
        method, _, path = (event.option.id or "").partition(" ")
        if not path:
            return
        self.query_one("#http-method", Select).value = method
        self.query_one("#http-path", Input).value = cors_audit.request_path(path)
        self.query_one("#http-body-kind", Select).value = "json" if method in ("POST", "PUT", "PATCH") else "none"
        self.query_one("#http-path", Input).focus()

    def selected_route(self) -> tuple[str, str] | None:
        routes = self.query_one("#http-routes", OptionList)
        if routes.highlighted is None:
            return None
        option = routes.get_option_at_index(routes.highlighted)
        method, _, path = (option.id or "").partition(" ")
        return (method, path) if path else None

    # -- header lines -------------------------------------------------------------

    def _show_top(self) -> None:
        connection = self.app.connection
        if connection is None:
            self.query_one("#http-top", Static).update("No deployment.")
            return
        text = Text()
        text.append("HTTP actions at ")
        text.append(connection.site_url, style="bold")
        text.append(f" ({connection.kind}; API at {connection.url})", style="dim")
        count = len([r for r in self.routes if r[0] != "OPTIONS"])
        text.append(f" · {cors_audit.plural(count, 'route')}")
        problems = cors_audit.check_env_files(Path.cwd(), connection)
        for problem in problems[:3]:
            text.append(f"\n⚠ {problem.file}: {problem.message}", style="yellow")
        self.query_one("#http-top", Static).update(text)

    def _bearer(self) -> str | None:
        token = getattr(self.app, "bearer_token", None)
        if token and self.query_one("#http-bearer", Checkbox).value:
            return token
        return None

    def _show_auth(self) -> None:
        token = getattr(self.app, "bearer_token", None)
        if token:
            note = f"Bearer token from the Auth screen: {mask_token(token)} (untick Bearer to leave it out)"
        else:
            note = "No Bearer token: set one on the Auth screen (5) to call authenticated routes."
        self.query_one("#http-auth-note", Static).update(Text(note, style="dim"))

    @on(Select.Changed, "#http-body-kind")
    def _body_kind(self, event: Select.Changed) -> None:
        kind = event.value
        self.query_one("#http-file", Input).display = kind == "file"
        self.query_one("#http-body-text", TextArea).display = kind in ("json", "text")

    # -- building and sending --------------------------------------------------------

    def build_request(self) -> dict:
        """The request as entered; raises ValueError with a one-line reason."""
        method = str(self.query_one("#http-method", Select).value)
        target = self.query_one("#http-path", Input).value.strip() or "/"
        query = self.query_one("#http-query", Input).value.strip()
        headers = parse_header_lines(self.query_one("#http-headers", TextArea).text)
        kind = str(self.query_one("#http-body-kind", Select).value)
        body: bytes | None = None
        names = {name.lower() for name, _ in headers}
        if kind == "json":
            raw = self.query_one("#http-body-text", TextArea).text
            if raw.strip():
                try:
                    json.loads(raw)
                except ValueError as error:
                    raise ValueError(f"the JSON body does not parse: {error}") from None
                body = raw.encode("utf-8")
                if "content-type" not in names:
                    headers.append(("Content-Type", "application/json"))
        elif kind == "text":
            body = self.query_one("#http-body-text", TextArea).text.encode("utf-8")
            if "content-type" not in names:
                headers.append(("Content-Type", "text/plain;charset=UTF-8"))
        elif kind == "file":
            body = read_body_file(self.query_one("#http-file", Input).value.strip())
        base_url = None
        path = target
        if target.lower().startswith(("http://", "https://")):
            parts = urlsplit(target)
            base_url = f"{parts.scheme}://{parts.netloc}"
            path = parts.path or "/"
            if parts.query:
                query = parts.query + ("&" + query if query else "")
        return {"method": method, "path": path, "query": query, "headers": headers, "body": body,
                "base_url": base_url, "target": target}

    def action_send(self) -> None:
        if self.sending:
            self.notify("A request is already on its way.")
            return
        try:
            request = self.build_request()
        except ValueError as error:
            self.notify(str(error), severity="error")
            return
        self.sending = True
        self.query_one("#http-status", Static).update(f"Sending {request['method']} {request['target']} …")
        self.query_one("#http-tabs", TabbedContent).active = "http-response"
        self.send(request)

    @on(Button.Pressed, "#http-send")
    def _send_pressed(self) -> None:
        self.action_send()

    @work(exclusive=True, exit_on_error=False, group="http-send")
    async def send(self, request: dict) -> None:
        full = (request["base_url"] or self.app.connection.site_url) + request["path"]
        diagnosis = cors_audit.check_request_url(full, self.app.connection) or ""
        try:
            exchange = await self.app.client.http_request(
                request["method"], request["path"], query=request["query"] or None, headers=request["headers"],
                body=request["body"], bearer=self._bearer(), base_url=request["base_url"], max_body=VIEW_BYTES,
            )
        except ClientError as error:
            self.post_message(ResponseArrived(None, str(error), diagnosis))
            return
        self.post_message(ResponseArrived(exchange, "", diagnosis))

    def on_response_arrived(self, message: ResponseArrived) -> None:
        self.sending = False
        self.last_exchange, self.last_error = message.exchange, message.error
        status = self.query_one("#http-status", Static)
        headers_view = self.query_one("#http-response-headers", Static)
        body_view = self.query_one("#http-response-body", Static)
        head = Text()
        if message.error:
            head.append(message.error, style="bold red")
            headers_view.update("")
            body_view.update("")
        else:
            exchange = message.exchange
            style = "green" if exchange.status < 300 else "yellow" if exchange.status < 400 else "red"
            head.append(exchange.summary(), style=f"bold {style}")
            if exchange.is_no_route:
                head.append("\nNo route matches this path and method on the HTTP router.", style="yellow")
            headers_view.update("\n".join(f"{k}: {v}" for k, v in exchange.headers) + "\n")
            text, note = exchange.body_text()
            body_view.update(f"── body: {note} ──\n{text}")
        if message.diagnosis:
            head.append(f"\n⚠ {message.diagnosis}", style="yellow")
        status.update(head)

    def worker_failed(self, worker) -> None:
        if worker.group == "http-send":
            self.sending = False
        elif worker.group == "http-audit":
            self.auditing = False

    # -- audit --------------------------------------------------------------------------

    def action_audit_route(self) -> None:
        route = self.selected_route()
        if route is None:
            self.notify("Select a route on the left first (F3 audits all).", severity="warning")
            return
        self._start_audit(route[1])

    def action_audit_all(self) -> None:
        self._start_audit(None)

    def _start_audit(self, route: str | None) -> None:
        if self.auditing:
            self.notify("An audit is already running.")
            return
        self.auditing = True
        self.query_one("#http-tabs", TabbedContent).active = "http-audit"
        what = route or "every route"
        self.query_one("#http-audit-state", Static).update(f"Auditing {what} (POST/PUT/PATCH routes really run) …")
        self.audit(route)

    @work(exclusive=True, exit_on_error=False, group="http-audit")
    async def audit(self, route: str | None) -> None:
        report = await cors_audit.run_audit(self.app.client, route=route, bearer=self._bearer(),
                                            routes=self.routes or None, env_dir=Path.cwd())
        self.post_message(AuditDone(report))

    def on_audit_done(self, message: AuditDone) -> None:
        self.auditing = False
        self.report = report = message.report
        table = self.query_one("#http-audit-table", DataTable)
        table.clear()
        for index, audit in enumerate(report.routes):
            verdict = Text(audit.verdict.upper() if audit.verdict != "ok" else "ok",
                           style="green" if audit.verdict == "ok" else "bold red")
            cells = [probe_cell(p) for p in audit.probes] + [Text("")] * (3 - len(audit.probes))
            table.add_row(f"{audit.method} {audit.route}", verdict, *cells,
                          MARK[audit.options_routed], key=str(index))
        summary = Text()
        if report.unreachable:
            summary.append(f"Nothing audited: {report.unreachable}. Check the deployment, then F3 to audit again.",
                           style="red")
            self.query_one("#http-audit-state", Static).update(summary)
            return
        if report.error:
            summary.append(report.error + "\n", style="red")
        bad = len(report.blocked)
        summary.append(f"{cors_audit.plural(len(report.routes), 'route')} audited, ")
        summary.append(f"{bad} would fail in a browser", style="bold red" if bad else "bold green")
        summary.append("  (✓ per header: Allow-Origin, Allow-Methods, Allow-Headers, Vary)", style="dim")
        for problem in report.env_problems:
            summary.append(f"\n⚠ {problem.file}: {problem.message}", style="yellow")
        self.query_one("#http-audit-state", Static).update(summary)
        first_bad = next((i for i, a in enumerate(report.routes) if a.blocked), 0)
        if report.routes:
            table.move_cursor(row=first_bad)
            self._show_audit_detail(first_bad)
        else:
            self.query_one("#http-audit-detail", Static).update("")

    @on(DataTable.RowHighlighted, "#http-audit-table")
    def _audit_row(self, event: DataTable.RowHighlighted) -> None:
        if event.row_key is not None and event.row_key.value is not None:
            self._show_audit_detail(int(event.row_key.value))

    def _show_audit_detail(self, index: int) -> None:
        if self.report is None or not 0 <= index < len(self.report.routes):
            return
        self.query_one("#http-audit-detail", Static).update(audit_detail(self.report.routes[index]))

    # -- saved requests ------------------------------------------------------------------

    def saved(self) -> list[dict]:
        found = self.app.session.ui_state(STATE_KEY).get("saved")
        return [item for item in found if isinstance(item, dict)] if isinstance(found, list) else []

    def _show_saved(self) -> None:
        saved = self.query_one("#http-saved", OptionList)
        saved.clear_options()
        for index, item in enumerate(self.saved()):
            saved.add_option(Option(f"{item.get('method', 'GET'):<7} {item.get('target', '/')}", id=str(index)))

    def action_save_request(self) -> None:
        try:
            request = self.build_request()
        except ValueError as error:
            self.notify(str(error), severity="error")
            return
        kind = str(self.query_one("#http-body-kind", Select).value)
        item = {
            "method": request["method"], "target": request["target"],
            "query": self.query_one("#http-query", Input).value,
            "headers": self.query_one("#http-headers", TextArea).text,
            "body_kind": kind, "body": self.query_one("#http-body-text", TextArea).text,
            "file": self.query_one("#http-file", Input).value,
        }
        items = [s for s in self.saved() if (s.get("method"), s.get("target")) != (item["method"], item["target"])]
        items.insert(0, item)
        self.app.session.remember_ui(STATE_KEY, saved=items[:MAX_SAVED])
        self._show_saved()
        self.notify(f"Saved {item['method']} {item['target']}.")

    @on(OptionList.OptionSelected, "#http-saved")
    def _saved_chosen(self, event: OptionList.OptionSelected) -> None:
        items = self.saved()
        index = int(event.option.id or 0)
        if index < len(items):
            self.load_saved(items[index])

    def load_saved(self, item: dict) -> None:
        self.query_one("#http-method", Select).value = item.get("method") if item.get("method") in METHODS else "GET"
        self.query_one("#http-path", Input).value = str(item.get("target") or "/")
        self.query_one("#http-query", Input).value = str(item.get("query") or "")
        self.query_one("#http-headers", TextArea).text = str(item.get("headers") or "")
        kind = item.get("body_kind") if item.get("body_kind") in dict((v, k) for k, v in BODY_KINDS) else "json"
        self.query_one("#http-body-kind", Select).value = kind
        self.query_one("#http-body-text", TextArea).text = str(item.get("body") or "")
        self.query_one("#http-file", Input).value = str(item.get("file") or "")

    def action_delete_saved(self) -> None:
        saved = self.query_one("#http-saved", OptionList)
        if not saved.has_focus or saved.highlighted is None:
            return
        items = self.saved()
        if saved.highlighted < len(items):
            removed = items.pop(saved.highlighted)
            self.app.session.remember_ui(STATE_KEY, saved=items)
            self._show_saved()
            self.notify(f"Removed {removed.get('method')} {removed.get('target')}.")

    # -- misc -------------------------------------------------------------------------------

    def action_reload(self) -> None:
        self.load_routes()

    def action_back(self) -> None:
        self.query_one("#http-routes", OptionList).focus()


def read_body_file(path_text: str) -> bytes:
    if not path_text:
        raise ValueError("choose a file to send as the body")
    path = Path(path_text).expanduser()
    try:
        size = path.stat().st_size
        if size > MAX_FILE_BYTES:
            raise ValueError(f"{path} is {size} bytes: HTTP actions accept at most {MAX_FILE_BYTES}")
        return path.read_bytes()
    except FileNotFoundError:
        raise ValueError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise ValueError(f"{path} is a folder, not a file") from None
    except PermissionError:
        raise ValueError(f"{path}: permission denied") from None
