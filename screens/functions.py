"""The Functions screen: the function spec as a tree, an arguments editor (JSON5-ish or a form)
checked locally against the validator, run as admin / acting as an identity / with a JWT, the
result pane, per-function history with re-run, copy, diff and named pins, next page for
paginated queries, and a live watch of a query.

Workers only call the client and post messages; the `on_*` handlers change widgets.
"""

from __future__ import annotations

import asyncio
import re
import time
from dataclasses import dataclass
from typing import Any

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.message import Message
from textual.screen import ModalScreen
from textual.widgets import Button, Input, Label, OptionList, Select, Static, TabbedContent, TabPane, Tree
from textual.widgets.option_list import Option

from console import values
from console.client import ClientError, FunctionResult, FunctionSpec, Unreachable, make_identity
from console.validator_tools import (
    ArgsSyntaxError,
    ArgsValidationError,
    format_value,
    pagination_field,
    parse_args,
    type_text,
    value_text,
)
from screens.base import ConsoleScreen
from screens.widgets.args_editor import ArgsEditor
from screens.widgets.function_tree import FunctionEntry, FunctionTree, entries_from_spec
from screens.widgets.modals import ConfirmModal
from screens.widgets.result_view import ResultView, RunOutcome

RUN_AS = [("admin", "admin"), ("act as identity", "identity"), ("JWT (Auth screen)", "jwt")]
STATE_KEY = "functions"
_PATH = re.compile(r"^[A-Za-z0-9_./]+:[A-Za-z0-9_]+$")
MAX_PINS = 50
POLL_SECONDS = 1.0
DEFAULT_ISSUER = "https://convex-console.invalid"


def make_screen() -> "FunctionsScreen":
    return FunctionsScreen()


# -- history store adapter -----------------------------------------------------------


class MemoryHistory:
    """The history API of console.sessions.History, in memory (no settings: tests, bare --url)."""

    def __init__(self, max_runs: int = 500) -> None:
        self.max_runs = max_runs
        self._runs: list[Any] = []
        self._next = 1

    def add_run(self, deployment, path, kind, args, status, *, result=None, error=None, elapsed_ms=0.0, identity=None):
        from console.sessions import FunctionRun

        run = FunctionRun(self._next, deployment, time.time(), path, kind, args, status, result, error, elapsed_ms, identity)
        self._next += 1
        self._runs.append(run)
        del self._runs[: -self.max_runs]
        return run.id

    def runs(self, deployment, *, path=None, limit=100):
        found = [r for r in reversed(self._runs) if r.deployment == deployment and (path is None or r.path == path)]
        return found[:limit]


# -- messages ------------------------------------------------------------------------


@dataclass
class SpecLoaded(Message):
    entries: list[FunctionEntry]
    table_mapping: dict[int, str]


@dataclass
class RunFinished(Message):
    entry_path: str
    args: Any
    outcome: RunOutcome
    continue_cursor: str | None = None
    is_done: bool = True


@dataclass
class WatchUpdate(Message):
    outcome: RunOutcome


@dataclass
class RunRequest:
    entry: FunctionEntry
    args: Any
    mode: str  # admin | identity | jwt
    identity: dict | None = None
    token: str | None = None

    @property
    def who(self) -> str:
        if self.mode == "identity" and self.identity:
            return f"acting as {self.identity.get('subject')}"
        return "token" if self.mode == "jwt" else "admin"


# -- history list ----------------------------------------------------------------------


@dataclass
class HistoryItem:
    kind: str  # run | pin
    args: Any
    label: str
    run: Any = None  # sessions.FunctionRun
    pin: dict | None = None


class HistoryList(OptionList):
    """Runs of the selected function, newest first, pinned invocations on top."""

    BINDINGS = [
        Binding("enter", "load", "Load args", id="functions.history-load"),
        Binding("x", "rerun", "Re-run", id="functions.history-rerun"),
        Binding("c", "copy_args", "Copy args", id="functions.history-copy"),
        Binding("d", "diff", "Diff", id="functions.history-diff"),
        Binding("p", "pin", "Pin", id="functions.history-pin"),
        Binding("delete", "unpin", "Unpin", show=False, id="functions.history-unpin"),
    ]

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self.items: list[HistoryItem] = []

    def set_items(self, items: list[HistoryItem]) -> None:
        highlighted = self.highlighted
        self.items = items
        self.clear_options()
        self.add_options([Option(self._label(item)) for item in items] or [Option("No runs yet", disabled=True)])
        if items:
            self.highlighted = min(highlighted or 0, len(items) - 1)

    @staticmethod
    def _label(item: HistoryItem) -> Text:
        text = Text()
        if item.kind == "pin":
            text.append("★ ", style="bold yellow")
            text.append(item.label, style="bold")
        else:
            run = item.run
            ok = run.status == "success"
            text.append("✔ " if ok else "✖ ", style="green" if ok else "red")
            text.append(time.strftime("%H:%M:%S", time.localtime(run.at)), style="dim")
            text.append(f" {run.elapsed_ms:7.1f} ms ", style="dim")
            text.append(f"{run.identity or 'admin'} ", style="cyan")
        text.append("  " + value_text(item.args, 70))
        return text

    @property
    def current(self) -> HistoryItem | None:
        if self.highlighted is None or not self.items or self.highlighted >= len(self.items):
            return None
        return self.items[self.highlighted]

    def action_load(self) -> None:
        self.screen.history_action("load", self.current)

    def action_rerun(self) -> None:
        self.screen.history_action("rerun", self.current)

    def action_copy_args(self) -> None:
        self.screen.history_action("copy", self.current)

    def action_diff(self) -> None:
        self.screen.history_action("diff", self.current)

    def action_pin(self) -> None:
        self.screen.history_action("pin", self.current)

    def action_unpin(self) -> None:
        self.screen.history_action("unpin", self.current)


class PinModal(ModalScreen[str | None]):
    """Ask for a pin's name."""

    BINDINGS = [Binding("escape", "cancel", "Cancel", id="functions.pin-cancel")]

    def __init__(self, suggestion: str) -> None:
        super().__init__(classes="modal")
        self.suggestion = suggestion

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog"):
            yield Label("Pin these arguments", classes="dialog-title")
            yield Input(self.suggestion, placeholder="name", id="pin-name")
            yield Static("Enter saves, Esc cancels.", classes="dialog-hint")

    def on_mount(self) -> None:
        self.query_one(Input).focus()

    @on(Input.Submitted, "#pin-name")
    def _save(self, event: Input.Submitted) -> None:
        self.dismiss(event.value.strip() or None)

    def action_cancel(self) -> None:
        self.dismiss(None)


# -- the screen ------------------------------------------------------------------------


class FunctionsScreen(ConsoleScreen):
    BINDINGS = [
        Binding("ctrl+r", "run", "Run", priority=True, id="functions.run"),
        Binding("slash", "filter", "Filter", id="functions.filter"),
        Binding("f3", "toggle_form", "Form/JSON", id="functions.toggle-form"),
        Binding("f4", "cycle_run_as", "Run as", id="functions.run-as"),
        Binding("n", "next_page", "Next page", id="functions.next-page"),
        Binding("w", "watch", "Watch", id="functions.watch"),
        Binding("m", "more", "More", show=False, id="functions.more"),
        Binding("c", "copy_result", "Copy result", show=False, id="functions.copy-result"),
        Binding("h", "show_tab('history')", "History", id="functions.history"),
        Binding("i", "show_tab('identity')", "Identity", show=False, id="functions.identity"),
        Binding("e", "show_tab('args')", "Args", show=False, id="functions.args"),
        Binding("r", "refresh", "Reload", show=False, id="functions.refresh"),
        Binding("escape", "back", "Back", show=False, id="functions.back"),
    ]

    def __init__(self) -> None:
        super().__init__()
        self.entries: list[FunctionEntry] = []
        self.entry: FunctionEntry | None = None
        self.table_mapping: dict[int, str] = {}
        self.last_args: Any = None
        self.next_cursor: str | None = None
        self.page_number = 1
        self.watching = False
        self.running = False
        self.diff_mark: HistoryItem | None = None
        self.drafts: dict[str, str] = {}  # path -> editor text, for this session
        self.spec_loaded = False
        self._memory_history = MemoryHistory()

    # -- layout ------------------------------------------------------------------

    def compose_body(self) -> ComposeResult:
        with Horizontal(id="fn-body"):
            with Vertical(id="fn-left"):
                yield Input(placeholder="/ filter functions", id="fn-filter")
                yield FunctionTree(id="fn-tree")
            with Vertical(id="fn-main"):
                yield Static("Loading the function spec…", id="fn-header")
                with Horizontal(id="fn-runbar"):
                    yield Select(RUN_AS, value="admin", allow_blank=False, id="fn-run-as")
                    yield Button("Run ⏎ ctrl+r", variant="primary", id="fn-run")
                    yield Button("Next page (n)", id="fn-next", disabled=True)
                    yield Button("Watch (w)", id="fn-watch", disabled=True)
                    yield Static("", id="fn-run-note")
                with Horizontal(id="fn-work"):
                    with TabbedContent(id="fn-tabs", initial="args"):
                        with TabPane("Args", id="args"):
                            yield ArgsEditor(id="fn-args")
                        with TabPane("Identity", id="identity"):
                            yield from self._identity_form()
                        with TabPane("History", id="history"):
                            yield HistoryList(id="fn-history")
                    yield ResultView(id="fn-result")

    def _identity_form(self) -> ComposeResult:
        with VerticalScroll(id="fn-identity"):
            yield Static("Acting as a user: the admin key plus these UserIdentity attributes "
                         "(tokenIdentifier = issuer|subject). Saved per profile.", classes="dialog-hint")
            for name, placeholder in (("subject", "user id (sub)"), ("issuer", DEFAULT_ISSUER), ("name", ""),
                                      ("email", ""), ("claims", "custom claims, e.g. { role: 'admin' }")):
                with Horizontal(classes="form-row"):
                    yield Label(name)
                    yield Input(placeholder=placeholder, id=f"identity-{name}")

    def on_mount(self) -> None:
        self._acting_seen = getattr(self.app, "acting_identity", None)
        self._token_seen: str | None = None  # a token already set is picked up on the first resume
        self._restore_identity()
        self.load_spec()

    def on_screen_resume(self) -> None:
        """The Auth screen may have set an identity or a token meanwhile."""
        acting = getattr(self.app, "acting_identity", None)
        if isinstance(acting, dict) and acting is not self._acting_seen:
            self._acting_seen = acting
            self._fill_identity(_identity_fields(acting))
            self.notify("Identity from the Auth screen: F4 to run as it.")
        self._follow_token()
        if self.is_mounted and self.query("#fn-run-note"):
            self._update_buttons()

    def _follow_token(self) -> None:
        """Run as the Auth screen's token when it sets one; back to admin when it clears it."""
        token = getattr(self.app, "bearer_token", None)
        if token == getattr(self, "_token_seen", None) or not self.query("#fn-run-as"):
            return
        self._token_seen = token
        select = self.query_one("#fn-run-as", Select)
        if token:
            select.value = "jwt"
            self.notify("Running as the token from the Auth screen (F4 changes it).", title="Run as")
        elif select.value == "jwt":
            select.value = "admin"
            self.notify("The Auth screen's token was cleared: running as admin.", title="Run as")

    # -- spec ----------------------------------------------------------------------

    @work(exclusive=True, exit_on_error=False, group="functions-spec")
    async def load_spec(self) -> None:
        specs = await self.app.client.api_spec()
        try:
            mapping = await self.app.client.table_mapping()
        except ClientError:
            mapping = {}
        self.post_message(SpecLoaded(entries_from_spec(specs), mapping))

    def on_spec_loaded(self, message: SpecLoaded) -> None:
        self.entries = message.entries
        self.table_mapping = message.table_mapping
        self.app.function_paths = [e.path for e in self.entries if not e.is_http]  # for the command palette
        tree = self.query_one(FunctionTree)
        tree.set_entries(message.entries)
        self.spec_loaded = True
        editor = self.query_one(ArgsEditor)
        editor.table_of_id = self._table_of_id
        self.query_one(ResultView).table_of_id = self._table_of_id
        last = self.app.session.ui_state(STATE_KEY).get("last")
        if self.entry is None:
            chosen = next((e for e in self.entries if e.path == last), None) or tree.first_function()
            if chosen is not None:
                self.select_function(chosen)
                tree.select_path(chosen.path)
        if not self.entries:
            self.query_one("#fn-header", Static).update("This deployment has no functions.")
        tree.focus()

    def _table_of_id(self, number: int) -> str | None:
        name = self.table_mapping.get(number)
        return {"_file_storage": "_storage", "_scheduled_jobs": "_scheduled_functions"}.get(name, name)

    def action_refresh(self) -> None:
        self.load_spec()

    # -- selection -----------------------------------------------------------------

    @on(Input.Changed, "#fn-filter")
    def _filter_changed(self, event: Input.Changed) -> None:
        self.query_one(FunctionTree).set_filter(event.value)

    @on(Input.Submitted, "#fn-filter")
    def _filter_submitted(self, event: Input.Submitted) -> None:
        tree = self.query_one(FunctionTree)
        first = tree.first_function()
        if first is not None:
            self.select_function(first)
            tree.select_path(first.path)
            tree.focus()
        elif _PATH.match(event.value.strip()):
            # Not in the spec: run it anyway (admin, /api/function) and show the deployment's answer.
            spec = FunctionSpec(identifier=event.value.strip(), function_type="Unknown", visibility=None)
            self.select_function(FunctionEntry(spec))
            self.query_one(ArgsEditor).text_area.focus()

    @on(Tree.NodeHighlighted, "#fn-tree")
    def _node_highlighted(self, event: Tree.NodeHighlighted) -> None:
        if event.node.data is not None and event.node.data != self.entry:
            self.select_function(event.node.data)

    @on(Tree.NodeSelected, "#fn-tree")
    def _node_selected(self, event: Tree.NodeSelected) -> None:
        if event.node.data is not None:
            self.select_function(event.node.data)
            self.query_one(ArgsEditor).text_area.focus()

    def select_function(self, entry: FunctionEntry, args: Any = None) -> None:
        if entry == self.entry and args is None:
            return
        self._stop_watch()
        editor = self.query_one(ArgsEditor)
        if self.entry is not None and editor.mode == "json":
            self.drafts[self.entry.path] = editor.text  # moving through the tree keeps what was typed
        self.entry = entry
        self.next_cursor = None
        self.page_number = 1
        self.diff_mark = None
        self.query_one("#fn-header", Static).update(self._header(entry))
        if entry.is_http:
            editor.set_function({"type": "object", "value": {}}, {})
        else:
            editor.set_function(entry.spec.args, args if args is not None or entry.kind else {})
            if args is None and entry.path in self.drafts:
                editor.set_text(self.drafts[entry.path])
        self._update_buttons()
        self.refresh_history()
        self._remember(last=entry.path)

    def open_function(self, path: str) -> bool:
        """Select a function by path (the command palette's "Run function: ..."); False if unknown."""
        entry = next((e for e in self.entries if e.path == path), None)
        if entry is None:
            return False
        tree = self.query_one(FunctionTree)
        self.query_one("#fn-filter", Input).value = ""
        tree.set_filter("")  # now, so the Changed message that follows does not rebuild the tree again
        self.select_function(entry)
        tree.select_path(path)
        self.query_one(ArgsEditor).text_area.focus()
        return True

    def _header(self, entry: FunctionEntry) -> Text:
        text = Text()
        text.append(entry.path, style="bold")
        text.append(f"  {entry.spec.function_type}", style="cyan")
        text.append("  internal" if entry.is_internal else "  public", style="dim" if not entry.is_internal else "yellow")
        if entry.is_http:
            text.append("\nAn HTTP route: send requests from the HTTP screen (6).", style="italic")
            return text
        if entry.kind is None:
            text.append("\nNot in this deployment's function spec: ctrl+r sends it anyway (admin, /api/function).",
                        style="italic yellow")
            return text
        text.append("\nreturns: ", style="dim")
        text.append(_ellipsis(type_text(entry.spec.returns, width=10_000), 150))
        if pagination_field(entry.spec.args):
            text.append("\npaginated: n runs the next page with the returned continueCursor", style="dim italic")
        return text

    def _update_buttons(self) -> None:
        entry = self.entry
        is_query = entry is not None and entry.kind == "query"
        self.query_one("#fn-next", Button).disabled = self.next_cursor is None
        watch = self.query_one("#fn-watch", Button)
        watch.disabled = not is_query
        watch.label = "Stop watching (w)" if self.watching else "Watch (w)"
        self.query_one("#fn-run-note", Static).update(self._run_note())

    def _run_note(self) -> str:
        mode = self.run_as
        notes = []
        if mode == "jwt":
            token = getattr(self.app, "bearer_token", None)
            notes.append("token from the Auth screen" if token else "no token yet: set one on the Auth screen (5)")
        if mode == "identity":
            subject = self.query_one("#identity-subject", Input).value.strip()
            notes.append(f"as {subject}" if subject else "fill the Identity tab (i)")
        if self.entry is not None and self.entry.is_internal:
            notes.append("internal: needs admin" if mode == "jwt" else
                         "internal: runs with the admin key" + (" acting as the identity" if mode == "identity" else ""))
        if self.next_cursor is not None:
            notes.append(f"page {self.page_number} · more available")
        elif self.page_number > 1:
            notes.append(f"page {self.page_number} · last page")
        if self.watching:
            notes.append("watching")
        return " · ".join(notes)

    # -- run -------------------------------------------------------------------------

    @property
    def run_as(self) -> str:
        return str(self.query_one("#fn-run-as", Select).value)

    @on(Select.Changed, "#fn-run-as")
    def _run_as_changed(self) -> None:
        self._update_buttons()

    def action_cycle_run_as(self) -> None:
        select = self.query_one("#fn-run-as", Select)
        modes = [mode for _label, mode in RUN_AS]
        select.value = modes[(modes.index(self.run_as) + 1) % len(modes)]

    @on(Button.Pressed, "#fn-run")
    def action_run(self) -> None:
        request = self._prepare()
        if request is None:
            return
        connection = self.app.connection
        if connection is not None and connection.is_production and request.entry.kind in ("mutation", "action", None):
            what = request.entry.kind or "function"
            self.app.push_screen(
                ConfirmModal(f"Run {what} on production?", f"{request.entry.path} on {connection.display_name}, "
                             f"as {request.who}, with {value_text(request.args, 80)}", confirm_label="Run"),
                lambda confirmed: self.execute(request) if confirmed else None)
            return
        self.running = True
        self.execute(request)

    def _prepare(self, args: Any = None) -> RunRequest | None:
        """Read and check everything locally; show why not in the result pane."""
        entry = self.entry
        result = self.query_one(ResultView)
        if entry is None:
            result.show(RunOutcome("(no function)", "info", note="Choose a function in the tree first."))
            return None
        if entry.is_http:
            result.show(RunOutcome(entry.path, "info", note="HTTP routes are called from the HTTP screen (6)."))
            return None
        editor = self.query_one(ArgsEditor)
        if args is None:
            try:
                args = editor.read()
            except (ArgsSyntaxError, ArgsValidationError, ValueError) as error:
                kind = "Invalid arguments" if isinstance(error, ArgsSyntaxError) else "Arguments do not match the validator"
                editor.show_error(str(error))
                result.show(RunOutcome(entry.path, "invalid", error_message=f"{kind}: {error}", who=""))
                return None
        if not isinstance(args, dict):
            message = f"Arguments must be an object like {{ name: 'value' }}, not {value_text(args, 40)}"
            editor.show_error(message)
            result.show(RunOutcome(entry.path, "invalid", error_message=message, who=""))
            return None
        editor.show_error("")
        mode = self.run_as
        request = RunRequest(entry, args, mode)
        if mode == "identity":
            try:
                request.identity = self._identity()
            except ValueError as error:
                result.show(RunOutcome(entry.path, "invalid", error_message=f"Identity: {error}", who=""))
                return None
        elif mode == "jwt":
            request.token = getattr(self.app, "bearer_token", None)
            if not request.token:
                result.show(RunOutcome(entry.path, "invalid", who="",
                                       error_message="No token: decode or mint one on the Auth screen (5), then run again."))
                return None
            if entry.is_internal:
                result.show(RunOutcome(entry.path, "invalid", who="token", error_message=(
                    "Internal functions need admin: run as admin or act as an identity "
                    "(with a user's token Convex answers “Could not find public function”).")))
                return None
        self.last_args = args
        return request

    @work(exclusive=True, exit_on_error=False, group="functions-run")
    async def execute(self, request: RunRequest) -> None:
        client = self._client_for(request)
        entry = request.entry
        try:
            result = await client.run_function(entry.kind or "function", entry.path, request.args)
        except ClientError as error:
            outcome = self._transport_outcome(request, error)
            self._record(request, outcome)
            self.post_message(RunFinished(entry.path, request.args, outcome))
            if isinstance(error, Unreachable):
                self.app.report_error(error, "functions-run")
            return
        outcome = await self._outcome(request, result)
        self._record(request, outcome)
        cursor, is_done = _pagination_state(entry, result)
        self.post_message(RunFinished(entry.path, request.args, outcome, cursor, is_done))

    def _client_for(self, request: RunRequest):
        client = self.app.client
        if request.mode == "identity" and request.identity:
            return client.with_identity(request.identity)
        if request.mode == "jwt" and request.token:
            return client.with_token(request.token)
        return client.as_admin()

    async def _outcome(self, request: RunRequest, result: FunctionResult) -> RunOutcome:
        size = None
        if result.ok:
            size = await asyncio.to_thread(values.value_size, result.value)
        note = ""
        if not result.ok and request.mode == "identity" and request.entry.is_internal:
            note = "Internal function, run with the admin key acting as the identity."
        return RunOutcome(request.entry.path, result.status, value=result.value, error_message=result.error_message or "",
                          error_data=result.error_data, log_lines=list(result.log_lines), elapsed=result.elapsed,
                          who=request.who, size=size, note=note)

    @staticmethod
    def _transport_outcome(request: RunRequest, error: ClientError) -> RunOutcome:
        if isinstance(error, Unreachable):
            message = (f"{error}\nThe deployment did not answer, so the outcome is unknown"
                       + (": check the data before running the mutation again." if request.entry.kind != "query" else "."))
        else:
            message = f"{type(error).__name__}: {error}"
        return RunOutcome(request.entry.path, "transport", error_message=message, who=request.who)

    def _record(self, request: RunRequest, outcome: RunOutcome) -> None:
        """Written as it happens (SQLite): a crash keeps every run made so far."""
        try:
            result = values.encode(outcome.value) if outcome.status == "success" else (
                values.encode(outcome.error_data) if outcome.error_data is not None else None)
            self.history_store.add_run(
                self.deployment_key, request.entry.path, request.entry.kind or "function", values.encode(request.args),
                outcome.status, result=result, error=outcome.error_message or None,
                elapsed_ms=(outcome.elapsed or 0.0) * 1000, identity=request.who)
        except Exception as error:  # history is a convenience: never fail a run for it
            self.app.notify(f"History not saved: {error}", severity="warning")

    def on_run_finished(self, message: RunFinished) -> None:
        self.running = False
        if self.entry is None or message.entry_path != self.entry.path:
            return
        self.query_one(ResultView).show(message.outcome)
        if pagination_field(self.entry.spec.args) and message.outcome.status == "success":
            self.next_cursor = None if message.is_done else message.continue_cursor
        self._update_buttons()
        self.refresh_history()

    # -- pagination ---------------------------------------------------------------------

    @on(Button.Pressed, "#fn-next")
    def action_next_page(self) -> None:
        if self.entry is None or self.next_cursor is None:
            self.notify("No next page: run a paginated query first.", severity="warning")
            return
        args = dict(self.last_args or {})
        name = pagination_field(self.entry.spec.args) or "paginationOpts"
        args[name] = {**dict(args.get(name) or {}), "cursor": self.next_cursor}
        self.query_one(ArgsEditor).set_value(args)
        request = self._prepare(args)
        if request is not None:
            self.page_number += 1
            self.execute(request)

    # -- watch ----------------------------------------------------------------------------

    @on(Button.Pressed, "#fn-watch")
    def action_watch(self) -> None:
        if self.watching:
            self._stop_watch()
            return
        if self.entry is None or self.entry.kind != "query":
            self.notify("Only queries can be watched.", severity="warning")
            return
        request = self._prepare()
        if request is None:
            return
        self.watching = True
        self._update_buttons()
        self.watch_query(request)

    def _stop_watch(self) -> None:
        if self.watching:
            self.workers.cancel_group(self, "functions-watch")
            self.watching = False
            self._update_buttons()

    @work(exclusive=True, exit_on_error=False, group="functions-watch")
    async def watch_query(self, request: RunRequest) -> None:
        from screens.widgets.live_query import watch

        async for outcome in watch(self.app.connection, self._client_for(request), request, POLL_SECONDS):
            self.post_message(WatchUpdate(outcome))

    def on_watch_update(self, message: WatchUpdate) -> None:
        if self.watching and self.entry is not None and message.outcome.path == self.entry.path:
            self.query_one(ResultView).show(message.outcome)

    # -- identity ----------------------------------------------------------------------------

    def _identity(self) -> dict:
        fields = {name: self.query_one(f"#identity-{name}", Input).value.strip()
                  for name in ("subject", "issuer", "name", "email", "claims")}
        if not fields["subject"]:
            raise ValueError("a subject is required (Identity tab, key i)")
        claims: dict[str, Any] = {}
        if fields["claims"]:
            try:
                parsed = parse_args(fields["claims"])
            except ArgsSyntaxError as error:
                raise ValueError(f"custom claims: {error}") from None
            if not isinstance(parsed, dict):
                raise ValueError("custom claims must be an object, e.g. { role: 'admin' }")
            claims = parsed
        for name in ("name", "email"):
            if fields[name]:
                claims[name] = fields[name]
        identity = make_identity(fields["subject"], fields["issuer"] or DEFAULT_ISSUER, **claims)
        self._remember(identity={k: v for k, v in fields.items() if v})
        return values.to_clean_json(identity)  # identity attributes are plain JSON

    def _restore_identity(self) -> None:
        saved = self.app.session.ui_state(STATE_KEY).get("identity")
        acting = getattr(self.app, "acting_identity", None)
        if not saved and isinstance(acting, dict):
            saved = _identity_fields(acting)
        self._fill_identity(saved or {})

    def _fill_identity(self, fields: dict) -> None:
        for name in ("subject", "issuer", "name", "email", "claims"):
            self.query_one(f"#identity-{name}", Input).value = str(fields.get(name) or "")

    @on(Input.Changed, "#identity-subject")
    def _subject_changed(self) -> None:
        self._update_buttons()

    # -- history -------------------------------------------------------------------------------

    @property
    def history_store(self):
        settings = getattr(self.app.session, "settings", None)
        store = getattr(settings, "history", None) if settings is not None else None
        return store if store is not None else self._memory_history

    @property
    def deployment_key(self) -> str:
        return self.app.session.state_key()

    def _pins(self) -> list[dict]:
        return list(self.app.session.ui_state(STATE_KEY).get("pins") or [])

    def _remember(self, **items: Any) -> None:
        self.app.session.remember_ui(STATE_KEY, **items)

    def refresh_history(self) -> None:
        if self.entry is None:
            return
        items: list[HistoryItem] = []
        for pin in self._pins():
            if pin.get("path") == self.entry.path:
                try:
                    items.append(HistoryItem("pin", values.decode(pin.get("args")), str(pin.get("name")), pin=pin))
                except ValueError:
                    continue
        for run in self.history_store.runs(self.deployment_key, path=self.entry.path, limit=100):
            try:
                items.append(HistoryItem("run", values.decode(run.args), "", run=run))
            except ValueError:
                continue
        self.query_one(HistoryList).set_items(items)

    def history_action(self, action: str, item: HistoryItem | None) -> None:
        if item is None:
            return
        editor = self.query_one(ArgsEditor)
        if action in ("load", "rerun"):
            editor.set_value(item.args)
            if action == "rerun":
                request = self._prepare(item.args)
                if request is not None:
                    self.execute(request)
            else:
                self.query_one("#fn-tabs", TabbedContent).active = "args"
                editor.text_area.focus()
        elif action == "copy":
            self.app.copy_to_clipboard(format_value(item.args))
            self.notify("Arguments copied to the clipboard (OSC 52).")
        elif action == "diff":
            self._diff(item)
        elif action == "pin":
            self.app.push_screen(PinModal(value_text(item.args, 30)), lambda name: self._pin(item, name))
        elif action == "unpin" and item.kind == "pin":
            self._remember(pins=[p for p in self._pins() if p is not item.pin and p != item.pin])
            self.refresh_history()

    def _pin(self, item: HistoryItem, name: str | None) -> None:
        if not name or self.entry is None:
            return
        pins = [p for p in self._pins() if not (p.get("path") == self.entry.path and p.get("name") == name)]
        pins.insert(0, {"name": name, "path": self.entry.path, "args": values.encode(item.args)})
        self._remember(pins=pins[:MAX_PINS])
        self.refresh_history()
        self.notify(f"Pinned as “{name}”.")

    def _diff(self, item: HistoryItem) -> None:
        if item.kind != "run":
            self.notify("Diff compares two runs' results.", severity="warning")
            return
        if self.diff_mark is None or self.diff_mark.run.id == item.run.id:
            self.diff_mark = item
            self.notify("Marked for diff: press d on another run.")
            return
        first, second = self.diff_mark, item
        self.diff_mark = None
        self.query_one(ResultView).show_diff(_run_label(first.run), _run_text(first.run),
                                             _run_label(second.run), _run_text(second.run))

    # -- small actions -----------------------------------------------------------------------------

    def action_filter(self) -> None:
        self.query_one("#fn-filter", Input).focus()

    def action_toggle_form(self) -> None:
        self.query_one("#fn-tabs", TabbedContent).active = "args"
        self.query_one(ArgsEditor).toggle_mode()

    def action_copy_result(self) -> None:
        outcome = self.query_one(ResultView).outcome
        if outcome is None or outcome.status not in ("success", "error"):
            self.notify("No result to copy.", severity="warning")
            return
        value = outcome.value if outcome.status == "success" else outcome.error_data
        text = format_value(value) if outcome.status == "success" or value is not None else outcome.error_message
        self.app.copy_to_clipboard(text)
        self.notify("Result copied to the clipboard (OSC 52).")

    def action_more(self) -> None:
        result = self.query_one(ResultView)
        if not result.more():
            self.notify("Everything is shown.")

    def action_show_tab(self, tab: str) -> None:
        self.query_one("#fn-tabs", TabbedContent).active = tab
        if tab == "history":
            self.query_one(HistoryList).focus()
        elif tab == "args":
            self.query_one(ArgsEditor).text_area.focus()
        else:
            self.query_one("#identity-subject", Input).focus()

    def action_back(self) -> None:
        self.query_one(FunctionTree).focus()

    def worker_failed(self, worker) -> None:
        if worker.group == "functions-run":
            self.running = False
        if worker.group == "functions-watch":
            self.watching = False
            self._update_buttons()
        if worker.group == "functions-spec" and not self.spec_loaded:
            self.query_one("#fn-header", Static).update("The function spec could not be loaded: press r to retry.")


def _identity_fields(identity: dict) -> dict:
    """UserIdentity attributes -> the Identity tab's fields (other claims as JSON5)."""
    extra = {k: v for k, v in identity.items() if k not in ("subject", "issuer", "tokenIdentifier", "name", "email")}
    return {"subject": identity.get("subject", ""), "issuer": identity.get("issuer", ""),
            "name": identity.get("name", ""), "email": identity.get("email", ""),
            "claims": format_value(extra, indent=0).replace("\n", " ") if extra else ""}


def _ellipsis(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _pagination_state(entry: FunctionEntry, result: FunctionResult) -> tuple[str | None, bool]:
    if not result.ok or not pagination_field(entry.spec.args) or not isinstance(result.value, dict):
        return None, True
    cursor = result.value.get("continueCursor")
    return (cursor if isinstance(cursor, str) else None), bool(result.value.get("isDone", True))


def _run_label(run) -> str:
    return f"#{run.id} {time.strftime('%H:%M:%S', time.localtime(run.at))} {run.status}"


def _run_text(run) -> str:
    try:
        value = values.decode(run.result) if run.result is not None else None
    except ValueError:
        value = run.result
    text = format_value(value)
    return text if run.status == "success" else f"error: {run.error}\n{text}"
