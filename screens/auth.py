"""The Auth screen: a token doctor.

Paste a JWT (or read it from the clipboard, a file, the token in use, or this deployment's
history) and see its header, claims, times and badge at once; ctrl+r verifies the signature
(OIDC discovery, a JWKS or data: URL, or a pasted key/secret) and matches the deployment's auth
providers as Convex would. ctrl+t makes the token the console's Bearer token for function calls
(`app.bearer_token`), ctrl+g copies its UserIdentity into "act as user" (`app.acting_identity`).
All the rules live in console/tokens.py; this module only shows them.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import time
from dataclasses import dataclass, field
from typing import Any, Callable
from urllib.parse import urlsplit

from rich.text import Text
from textual import events, on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.message import Message
from textual.screen import ModalScreen
from textual.timer import Timer
from textual.widgets import Button, Input, Label, OptionList, Static, TextArea
from textual.widgets.option_list import Option

from console import tokens as T
from console.client import ClientError
from screens.base import ConsoleScreen
from screens.widgets.token_report import ReportContext, TokenReportView

HISTORY_SEPARATOR = "\x1f"  # label = "<deployment>\x1f<description>": History has no deployment column
HISTORY_SHOWN = 30
RECOMPUTE_DELAY = 0.15  # seconds after the last key
MAX_FILE_BYTES = 1 << 20
CLIPBOARD_COMMANDS = (
    ("wl-paste", "--no-newline"),
    ("xclip", "-selection", "clipboard", "-o"),
    ("xsel", "--clipboard", "--output"),
    ("pbpaste",),
)
NO_CLIPBOARD = (
    "Textual cannot read the system clipboard from a terminal (no wl-paste, xclip, xsel or pbpaste "
    "here): paste into the token box with your terminal's paste key (ctrl+shift+v or cmd+v)."
)


# -- messages posted by workers ------------------------------------------------------


@dataclass
class ProvidersLoaded(Message):
    providers: list | None
    note: str


@dataclass
class Verified(Message):
    token: str
    report: T.TokenReport


@dataclass
class TokenLoaded(Message):
    token: str | None
    source: str
    error: str = ""


# -- token history per deployment -------------------------------------------------------


@dataclass
class HistoryItem:
    token: str
    label: str
    at: float


@dataclass
class TokenHistory:
    """This deployment's tokens, newest first, over console.sessions.History (bounded there);
    in memory when the console has no settings store (tests, a bare --url)."""

    deployment: str
    store: Any = None
    memory: list[HistoryItem] = field(default_factory=list)

    def add(self, token: str, description: str, now: float) -> None:
        label = f"{self.deployment}{HISTORY_SEPARATOR}{description}"
        if self.store is not None:
            try:
                self.store.add_token(token, label)
                return
            except Exception:  # a locked or damaged history file must not break the screen
                pass
        self.memory = [HistoryItem(token, description, now)] + [i for i in self.memory if i.token != token]
        del self.memory[HISTORY_SHOWN:]

    def items(self) -> list[HistoryItem]:
        if self.store is None:
            return list(self.memory)
        try:
            entries = self.store.tokens(limit=200)
        except Exception:
            return list(self.memory)
        items = []
        for entry in entries:
            deployment, _, description = (entry.label or "").partition(HISTORY_SEPARATOR)
            if deployment == self.deployment:
                items.append(HistoryItem(entry.token, description, entry.at))
        return items[:HISTORY_SHOWN]


def describe_token(token: str) -> str:
    """`user_1 @ 127.0.0.1:3210` (no secret), for history labels."""
    try:
        decoded = T.decode_token(token)
    except T.TokenError as error:
        return f"undecodable ({error.code})"
    issuer = decoded.issuer or "no iss"
    host = urlsplit(issuer).netloc or issuer
    return f"{decoded.subject or 'no sub'} @ {host}"[:60]


def history_prompt(item: HistoryItem, now: float, in_use: bool) -> Text:
    text = Text()
    text.append("● " if in_use else "  ", style="bold cyan")
    text.append(T.mask_token(item.token), style="bold")
    text.append(f"  {item.label}")
    try:
        claims = T.decode_token(item.token).claims
    except T.TokenError:
        return text
    exp = next((c for c in T.describe_time_claims(claims, now) if c.name == "exp"), None)
    if exp is not None:
        style = "red" if T.token_status(claims, now) == T.STATUS_EXPIRED else "green"
        text.append(f"  {exp.relative}", style=style)
    return text


# -- reading a token from elsewhere -----------------------------------------------------------


def read_system_clipboard(timeout: float = 2.0) -> str | None:
    """The system clipboard through the platform's tool, or None when there is none."""
    for command in CLIPBOARD_COMMANDS:
        if shutil.which(command[0]) is None:
            continue
        try:
            done = subprocess.run(command, capture_output=True, timeout=timeout, check=False)
        except (OSError, subprocess.SubprocessError):
            continue
        if done.returncode == 0:
            return done.stdout[:T.MAX_TOKEN_BYTES * 2].decode("utf-8", "replace")
    return None


def read_token_file(path: str) -> str:
    """The token in a file (raises ValueError with a one-line reason)."""
    path = os.path.expanduser(path.strip())
    if not path:
        raise ValueError("No file name given.")
    try:
        with open(path, "rb") as handle:
            data = handle.read(MAX_FILE_BYTES + 1)
    except OSError as error:
        raise ValueError(f"Cannot read {path}: {error.strerror or error}") from None
    if len(data) > MAX_FILE_BYTES:
        raise ValueError(f"{path} is larger than 1 MiB: it does not hold a token.")
    return T.token_from_file_text(data.decode("utf-8", "replace"))


class PathModal(ModalScreen[str | None]):
    """Asks for a file name."""

    BINDINGS = [Binding("escape", "cancel", "Cancel", id="auth.file-cancel")]

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog"):
            yield Label("Read a token from a file", classes="dialog-title")
            yield Static("The file holds the JWT (or JSON with a token / id_token field). Enter reads it.",
                         classes="dialog-hint")
            yield Input(placeholder="~/token.txt", id="auth-path")
            with Horizontal(classes="dialog-buttons"):
                yield Button("Read", variant="primary", id="read")
                yield Button("Cancel", id="cancel")

    @on(Input.Submitted, "#auth-path")
    @on(Button.Pressed, "#read")
    def _read(self) -> None:
        self.dismiss(self.query_one("#auth-path", Input).value)

    @on(Button.Pressed, "#cancel")
    def action_cancel(self) -> None:
        self.dismiss(None)


# -- the screen -----------------------------------------------------------------------------------

WARNING_TIMEOUT = 10  # seconds: a refusal reason is longer than the default toast stays up


def refusal(report: T.TokenReport) -> str:
    """Why Convex would refuse a decodable token, most telling reason first."""
    errors = report.errors
    expired = next((p for p in errors if p.code == "expired"), None)
    if expired is not None or report.status == T.STATUS_EXPIRED:
        return "expired" + (f": {expired.message}" if expired else "")
    if report.match is not None and report.match.chosen is None:
        return f"not matched by any auth provider of this deployment: {report.match.summary}"
    if report.status == T.STATUS_NOT_YET_VALID:
        return "not valid yet"
    if errors:
        return errors[0].message
    return f"it is {report.status}"



class AuthScreen(ConsoleScreen):
    # The report first: number keys and `?` must switch sections on arrival; enter/i/paste type a token.
    AUTO_FOCUS = "#auth-report-pane"
    BINDINGS = [
        Binding("i,enter", "focus_token", "Type token", show=False, id="auth.focus-token"),
        Binding("ctrl+r", "verify", "Verify", id="auth.verify"),
        Binding("ctrl+t", "use_token", "Use token", id="auth.use"),
        Binding("ctrl+g", "act_as", "Act as user", id="auth.act"),
        Binding("ctrl+l", "from_clipboard", "Clipboard", id="auth.clipboard"),
        Binding("ctrl+f", "from_file", "File", id="auth.file"),
        Binding("ctrl+n", "clear_token", "Clear", show=False, id="auth.clear"),
        Binding("f2", "focus_history", "History", id="auth.history"),
        Binding("f3", "current_token", "In use", id="auth.current"),
        Binding("f4", "copy_identity", "Copy identity", show=False, id="auth.copy-identity"),
        Binding("f5", "reload_providers", "Providers", show=False, id="auth.providers"),
        Binding("escape", "focus_report", "Report", show=False, id="auth.focus-report"),
    ]

    def __init__(self, clock: Callable[[], float] | None = None) -> None:
        super().__init__()
        self.clock: Callable[[], float] = clock or time.time
        self.providers: list | None = None
        self.providers_note = "listing the deployment's providers…"
        self.report: T.TokenReport | None = None
        self.key_source: T.KeySource | None = None
        self.key_description = ""
        self.key_error = ""
        self.verifying = False
        self.history: TokenHistory | None = None
        self._history_tokens: list[str] = []
        self._pending: Timer | None = None
        self._key_changed_since_verify = False

    # -- layout ------------------------------------------------------------------------

    def compose_body(self) -> ComposeResult:
        with Horizontal(id="auth-body"):
            with Vertical(id="auth-input-pane"):
                yield Label("Token (JWT; a 'Bearer ' prefix is fine)", classes="pane-title")
                yield TextArea(id="auth-token", soft_wrap=True, show_line_numbers=False, tab_behavior="focus")
                yield Label("Key (optional)", classes="pane-title")
                yield TextArea(id="auth-key", soft_wrap=True, show_line_numbers=False, tab_behavior="focus")
                yield Static("", id="auth-key-hint")
                yield Label("History of this deployment", classes="pane-title")
                yield OptionList(id="auth-history")
            with VerticalScroll(id="auth-report-pane"):
                yield TokenReportView(id="auth-report")

    def on_mount(self) -> None:
        self._client = getattr(self.app, "client", None)
        self.history = TokenHistory(self._deployment_key(), self._history_store())
        self._update_key(self.query_one("#auth-key", TextArea).text)
        self.refresh_history()
        self.refresh_report()
        self.load_providers()
        self.set_interval(30, self._tick)

    def on_screen_resume(self) -> None:
        """Back on this screen after a deployment switch: its providers and history, not the old ones."""
        if getattr(self.app, "client", None) is not getattr(self, "_client", None):
            self._client = getattr(self.app, "client", None)
            self.history = TokenHistory(self._deployment_key(), self._history_store())
            self.providers = None
            self.refresh_history()
            self.action_reload_providers()
        self.recompute(keep_verification=True)

    def _deployment_key(self) -> str:
        session = getattr(self.app, "session", None)
        try:
            return session.state_key() if session is not None else "default"
        except Exception:
            return "default"

    def _history_store(self) -> Any:
        settings = getattr(getattr(self.app, "session", None), "settings", None)
        try:
            return getattr(settings, "history", None) if settings is not None else None
        except Exception:  # an unwritable config dir: keep the history in memory
            return None

    def _tick(self) -> None:
        """Relative times ('expires in 23 min') age; recompute them."""
        self.recompute(keep_verification=True)
        self.refresh_history()

    # -- the token and its report ----------------------------------------------------------

    @property
    def token(self) -> str:
        return self.query_one("#auth-token", TextArea).text.strip()

    def set_token(self, token: str) -> None:
        area = self.query_one("#auth-token", TextArea)
        area.load_text(token)
        self.recompute()

    @on(TextArea.Changed, "#auth-token")
    def _token_changed(self, _event: TextArea.Changed) -> None:
        self._recompute_soon()

    @on(TextArea.Changed, "#auth-key")
    def _key_changed(self, event: TextArea.Changed) -> None:
        self._update_key(event.text_area.text)
        self._key_changed_since_verify = True
        self._recompute_soon()

    def _recompute_soon(self) -> None:
        """Typing a token key by key must not re-render the whole report per key."""
        if self._pending is not None:
            self._pending.stop()
        self._pending = self.set_timer(RECOMPUTE_DELAY, self.recompute)

    def _flush(self) -> None:
        if self._pending is not None or (self.report is not None and self.report.raw != self.token):
            self.recompute()

    def _update_key(self, text: str) -> None:
        try:
            self.key_source, self.key_description = T.key_source_from_text(text)
            self.key_error = ""
        except ValueError as error:
            self.key_source, self.key_description, self.key_error = None, "", str(error)
        hint = self.query_one("#auth-key-hint", Static)
        if self.key_error:
            hint.update(Text(f"✗ {self.key_error}", style="red"))
        else:
            hint.update(Text(f"Key: {self.key_description}\n"
                             "Also: JWKS URL, data:, PEM, JWKS JSON, file, secret:…", style="dim"))

    def recompute(self, keep_verification: bool = True) -> None:
        """Decode and match at once (no network); the signature needs ctrl+r. A verification
        result stays while the token and the key stay the same."""
        if self._pending is not None:
            self._pending.stop()
            self._pending = None
        token = self.token
        previous = self.report
        if not token:
            self.report = None
        else:
            try:
                self.report = T.diagnose(token, providers=self.providers, verify=False, now=self.clock())
            except Exception as error:  # the doctor itself must never take the screen down
                self.report = T.TokenReport(raw=token, decode_error=T.TokenError("internal", f"{error!r}"))
            same = previous is not None and previous.raw == self.report.raw and not self._key_changed_since_verify
            if keep_verification and same:
                self.report.verification = previous.verification
        self._key_changed_since_verify = False
        self.refresh_report()

    def refresh_report(self) -> None:
        token = self.token
        context = ReportContext(
            providers_note="" if self.providers is not None else self.providers_note,
            key_description=self.key_error or self.key_description,
            in_use=self.report is not None and self.report.decoded is not None
            and getattr(self.app, "bearer_token", None) == self.report.decoded.raw,
            acting=self.report is not None and self.report.identity is not None
            and getattr(self.app, "acting_identity", None) == self.report.identity,
            verifying=self.verifying,
        )
        self.query_one("#auth-report", TokenReportView).show(self.report, self.clock(), context)
        self.refresh_bindings()

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        """Dim what needs a decodable token while there is none (use/act say why instead)."""
        if action in ("copy_identity", "verify"):  # ctrl+t/ctrl+g stay live: they explain a refusal
            return True if self.report is not None and self.report.decoded is not None else None
        return True

    # -- providers ---------------------------------------------------------------------------

    @work(exclusive=True, exit_on_error=False, group="auth-providers")
    async def load_providers(self) -> None:
        client = getattr(self.app, "client", None)
        if client is None:
            self.post_message(ProvidersLoaded(None, "not connected to a deployment"))
            return
        try:
            rows = await client.list_auth_providers()
            providers = T.parse_providers(rows)
        except ClientError as error:
            reason = getattr(error, "summary", None) or str(error)
            self.post_message(ProvidersLoaded(None, f"could not list them ({reason.strip()})"))
            return
        except ValueError as error:
            self.post_message(ProvidersLoaded(None, f"listAuthProviders answered something odd ({error})"))
            return
        self.post_message(ProvidersLoaded(providers, ""))

    def on_providers_loaded(self, message: ProvidersLoaded) -> None:
        self.providers = message.providers
        self.providers_note = message.note
        self.recompute(keep_verification=True)

    def action_reload_providers(self) -> None:
        self.providers_note = "listing the deployment's providers…"
        self.load_providers()

    # -- verify ---------------------------------------------------------------------------------

    def action_verify(self) -> None:
        self._flush()
        token = self.token
        if not token:
            self.notify("Paste a token first.", severity="warning")
            return
        if self.key_error:
            self.notify(self.key_error, title="Key", severity="error")
            return
        if self.report is None or self.report.decoded is None:
            self.recompute()
            return  # nothing to verify: the report already says why it cannot be decoded
        self._remember(token)
        self.verifying = True
        self.refresh_report()
        self.verify_token(token, self.key_source, self.providers, self.clock())

    @work(exclusive=True, exit_on_error=False, group="auth-verify")
    async def verify_token(self, token: str, keys: T.KeySource | None, providers: list | None, now: float) -> None:
        try:
            report = await T.diagnose_async(token, providers=providers, keys=keys, now=now)
        except asyncio.CancelledError:
            raise
        except Exception as error:  # a key or JWKS the libraries choke on: a diagnosis, not a crash
            report = T.diagnose(token, providers=providers, verify=False, now=now)
            report.verification = T.VerifyResult(False, [T.Problem("verify_failed", f"Verification failed: {error}")],
                                                 "?")
        self.post_message(Verified(token, report))

    def on_verified(self, message: Verified) -> None:
        self.verifying = False
        if message.token != self.token:
            self.refresh_report()
            return  # the text changed meanwhile
        self.report = message.report
        self.refresh_report()

    def worker_failed(self, worker) -> None:
        if worker.group == "auth-verify":
            self.verifying = False
            self.refresh_report()

    # -- use the token / act as its user ---------------------------------------------------------

    def _decoded_token(self, what: str) -> str | None:
        self._flush()
        report = self.report
        if report is None:
            self.notify(f"Paste a token to {what}.", severity="warning")
            return None
        if report.decoded is None:
            message = report.decode_error.message if report.decode_error else "it is not a JWT"
            self.notify(f"Cannot {what}: the token cannot be decoded. {message}", title="Undecodable token",
                        severity="error", timeout=WARNING_TIMEOUT)
            return None
        return report.decoded.raw

    def action_use_token(self) -> None:
        self._flush()
        if getattr(self.app, "bearer_token", None) and (self.report is None or self.report.decoded is None):
            self.app.bearer_token = None  # nothing decodable shown: the key only stops the one in use
            self.notify("Function calls use the admin key again.", title="Token no longer in use")
            self.refresh_report()
            self.refresh_history()
            return
        token = self._decoded_token("use it")
        if token is None:
            return
        if getattr(self.app, "bearer_token", None) == token:
            self.app.bearer_token = None
            self.notify("Function calls use the admin key again.", title="Token no longer in use")
        else:
            self.app.bearer_token = token
            self.app.acting_identity = None
            self._remember(token)
            if self.report.valid:
                self.notify(f"Function calls now send Authorization: Bearer {T.mask_token(token)}.",
                            title="Using this token")
            else:
                self.notify(f"Convex will refuse it ({refusal(self.report)}). Function calls now send it anyway, "
                            "so expect 401 errors; ctrl+t again stops.", title="Warning: using a token that fails",
                            severity="warning", timeout=WARNING_TIMEOUT)
        self.refresh_report()
        self.refresh_history()

    def action_act_as(self) -> None:
        self._flush()
        if getattr(self.app, "acting_identity", None) and (self.report is None or self.report.decoded is None):
            self.app.acting_identity = None
            self.notify("Function calls run as admin again.", title="Not acting as a user")
            self.refresh_report()
            return
        token = self._decoded_token("act as its user")
        if token is None:
            return
        identity = self.report.identity
        if getattr(self.app, "acting_identity", None) == identity:
            self.app.acting_identity = None
            self.notify("Function calls run as admin again.", title="Not acting as a user")
        else:
            self.app.acting_identity = dict(identity)
            self.app.bearer_token = None
            self._remember(token)
            if self.report.valid:
                self.notify(f"Function calls act as {identity.get('tokenIdentifier')} (admin key + identity).",
                            title="Acting as user")
            else:
                self.notify(f"Convex would refuse this token ({refusal(self.report)}), but the admin key + identity "
                            f"skips verification: function calls act as {identity.get('tokenIdentifier')} anyway. "
                            "ctrl+t sends the token itself (to test the 401).", title="Warning: acting as a refused token",
                            severity="warning", timeout=WARNING_TIMEOUT)
        self.refresh_report()
        self.refresh_history()

    def action_copy_identity(self) -> None:
        self._flush()
        import json

        if self.report is None or self.report.identity is None:
            self.notify("No identity: paste a decodable token.", severity="warning")
            return
        self.app.copy_to_clipboard(json.dumps(self.report.identity, indent=2, ensure_ascii=False, default=str))
        self.notify("The UserIdentity JSON is on the clipboard.")

    # -- sources: clipboard, file, token in use, history -------------------------------------------

    def action_from_clipboard(self) -> None:
        self.read_clipboard()

    @work(exclusive=True, exit_on_error=False, group="auth-clipboard", thread=True)
    def read_clipboard(self) -> None:
        text = read_system_clipboard()
        if text is None:
            local = getattr(self.app, "clipboard", "") or ""
            if local.strip():
                self.post_message(TokenLoaded(local, "the console's clipboard (the system one is not readable)"))
            else:
                self.post_message(TokenLoaded(None, "clipboard", NO_CLIPBOARD))
            return
        if not text.strip():
            self.post_message(TokenLoaded(None, "clipboard", "The clipboard is empty."))
            return
        self.post_message(TokenLoaded(text, "the clipboard"))

    def action_from_file(self) -> None:
        def chosen(path: str | None) -> None:
            if path is None:
                return
            try:
                token = read_token_file(path)
            except ValueError as error:
                self.post_message(TokenLoaded(None, path, str(error)))
                return
            self.post_message(TokenLoaded(token, path))

        self.app.push_screen(PathModal(classes="modal"), chosen)

    def on_token_loaded(self, message: TokenLoaded) -> None:
        area = self.query_one("#auth-token", TextArea)
        if message.token is None:
            self.notify(message.error, title="No token read", severity="warning", timeout=8)
            area.focus()
            return
        self.set_token(message.token.strip())
        if self.report is not None and self.report.decoded is not None:
            self._remember(self.report.decoded.raw)
        self.notify(f"Read {T.mask_token(message.token.strip())} from {message.source}.")

    def action_current_token(self) -> None:
        token = getattr(self.app, "bearer_token", None)
        if not token:
            self.notify("No token is in use for function calls (ctrl+t uses the one shown).", severity="warning")
            return
        self.set_token(token)

    def action_clear_token(self) -> None:
        self.set_token("")
        self.query_one("#auth-token", TextArea).focus()

    def action_focus_history(self) -> None:
        options = self.query_one("#auth-history", OptionList)
        if options.highlighted is None and options.option_count:
            options.highlighted = 0
        options.focus()

    def action_focus_report(self) -> None:
        self.query_one("#auth-report-pane").focus()

    def action_focus_token(self) -> None:
        self.query_one("#auth-token", TextArea).focus()

    def on_paste(self, event: events.Paste) -> None:
        """A paste outside the text boxes is a token: put it in the token box."""
        if isinstance(self.focused, TextArea) or not event.text.strip():
            return
        event.stop()
        self.set_token(event.text.strip())
        self.action_focus_token()

    def _remember(self, token: str) -> None:
        if self.history is not None:
            self.history.add(token, describe_token(token), self.clock())
            self.refresh_history()

    def refresh_history(self) -> None:
        if self.history is None:
            return
        options = self.query_one("#auth-history", OptionList)
        items = self.history.items()
        in_use = getattr(self.app, "bearer_token", None)
        now = self.clock()
        highlighted = options.highlighted
        options.clear_options()
        options.add_options([Option(history_prompt(item, now, item.token == in_use)) for item in items])
        self._history_tokens = [item.token for item in items]
        if highlighted is not None and items:
            options.highlighted = min(highlighted, len(items) - 1)

    @on(OptionList.OptionSelected, "#auth-history")
    def _history_selected(self, event: OptionList.OptionSelected) -> None:
        if 0 <= event.option_index < len(self._history_tokens):
            self.set_token(self._history_tokens[event.option_index])
            self.query_one("#auth-token", TextArea).focus()


def make_screen() -> AuthScreen:
    return AuthScreen()
