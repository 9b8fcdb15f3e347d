"""The Settings screen: deployment info (URLs, version, instance name) and the deployment's
environment variables (list, add, edit, remove with confirmation; values masked until
revealed). Env vars go through `DeploymentClient.list_env_vars` / `update_env_vars`."""

from __future__ import annotations

import re
from dataclasses import dataclass

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.message import Message
from textual.screen import ModalScreen
from textual.widgets import Button, Checkbox, DataTable, Input, Label, Static

from console.client import ClientError
from console.cors_audit import plural
from screens.base import ConsoleScreen
from screens.widgets.modals import ConfirmModal

NAME_RULE = re.compile(r"^[a-zA-Z_]+[a-zA-Z0-9_]*$")
MAX_NAME = 40
MASK = "••••••••"


def make_screen() -> "SettingsScreen":
    return SettingsScreen()


def name_problem(name: str) -> str | None:
    """Convex's env var name rules, checked before sending."""
    if not NAME_RULE.match(name):
        return (f"The environment variable name {name or '(empty)'} is invalid: names begin with a letter "
                "or _ and use only a-z, A-Z, 0-9 and _.")
    if len(name) > MAX_NAME:
        return f"The environment variable name {name} is too long (at most {MAX_NAME} characters)."
    return None


@dataclass
class InfoLoaded(Message):
    instance_name: str | None
    version: str | None
    error: str = ""


@dataclass
class EnvLoaded(Message):
    variables: dict[str, str]
    error: str = ""


class EnvVarModal(ModalScreen["tuple[str, str] | None"]):
    """Add (name and value) or edit (value) one variable; the value is hidden until shown."""

    BINDINGS = [Binding("escape", "cancel", "Cancel", id="settings.env-cancel")]

    def __init__(self, name: str = "", value: str = "") -> None:
        super().__init__(classes="modal")
        self.editing = bool(name)
        self.initial_name = name
        self.initial_value = value

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog settings-env-dialog"):
            yield Label(f"Edit {self.initial_name}" if self.editing else "Add an environment variable",
                        classes="dialog-title")
            yield Input(self.initial_name, placeholder="NAME", id="env-name", disabled=self.editing)
            yield Input(self.initial_value, placeholder="value", password=True, id="env-value")
            yield Checkbox("Show value", value=False, id="env-show")
            yield Static("", id="env-problem")
            with Horizontal(classes="dialog-buttons"):
                yield Button("Save", variant="primary", id="env-save")
                yield Button("Cancel", id="env-cancel")

    def on_mount(self) -> None:
        self.query_one("#env-value" if self.editing else "#env-name", Input).focus()

    @on(Checkbox.Changed, "#env-show")
    def _show(self, event: Checkbox.Changed) -> None:
        self.query_one("#env-value", Input).password = not event.value

    @on(Input.Submitted)
    @on(Button.Pressed, "#env-save")
    def _save(self) -> None:
        name = self.query_one("#env-name", Input).value.strip()
        problem = name_problem(name)
        if problem:
            self.query_one("#env-problem", Static).update(Text(problem, style="red"))
            return
        self.dismiss((name, self.query_one("#env-value", Input).value))

    @on(Button.Pressed, "#env-cancel")
    def action_cancel(self) -> None:
        self.dismiss(None)


class SettingsScreen(ConsoleScreen):
    BINDINGS = [
        Binding("a", "add", "Add variable", id="settings.add"),
        Binding("e,enter", "edit", "Edit", id="settings.edit"),
        Binding("d,delete", "remove", "Remove", id="settings.remove"),
        Binding("v", "reveal", "Reveal", id="settings.reveal"),
        Binding("V", "reveal_all", "Reveal all", show=False, id="settings.reveal-all"),
        Binding("r", "refresh", "Refresh", id="settings.refresh"),
    ]

    def __init__(self) -> None:
        super().__init__()
        self.variables: dict[str, str] = {}
        self.revealed: set[str] = set()
        self.instance_name: str | None = None
        self.version: str | None = None
        self.info_error = ""

    def compose_body(self) -> ComposeResult:
        yield Static("", id="settings-info")
        yield Static("Environment variables (a add · e edit · d remove · v reveal)", id="settings-env-title")
        yield DataTable(id="settings-env", cursor_type="row", zebra_stripes=True)
        yield Static("", id="settings-env-state")

    def on_mount(self) -> None:
        self.query_one("#settings-env", DataTable).add_columns("Name", "Value", "Length")
        self._show_info()
        self.load_info()
        self.load_env()
        self.query_one("#settings-env", DataTable).focus()

    # -- deployment info ----------------------------------------------------------

    @work(exclusive=True, exit_on_error=False, group="settings-info")
    async def load_info(self) -> None:
        client = self.app.client
        try:
            name = await client.instance_name()
            version = await client.version()
        except ClientError as error:
            self.post_message(InfoLoaded(None, None, str(error)))
            return
        self.post_message(InfoLoaded(name, version))

    def on_info_loaded(self, message: InfoLoaded) -> None:
        self.instance_name, self.version, self.info_error = message.instance_name, message.version, message.error
        self._show_info()

    def _show_info(self) -> None:
        connection = self.app.connection
        text = Text()
        if connection is None:
            self.query_one("#settings-info", Static).update("No deployment.")
            return
        rows = [
            ("Deployment", connection.display_name),
            ("Kind", connection.kind + (" (production)" if connection.is_production else "")),
            ("URL", connection.url),
            ("HTTP actions", connection.site_url),
            ("Instance name", self.instance_name or "…"),
            ("Version", self.version or "…"),
            ("Credential", connection.display_credential),
            ("Chosen from", getattr(self.app, "origin", "") or "-"),
        ]
        for label, value in rows:
            text.append(f"{label:<15}", style="bold")
            text.append(f"{value}\n")
        if self.info_error:
            text.append(self.info_error, style="red")
        self.query_one("#settings-info", Static).update(text)

    # -- env vars -------------------------------------------------------------------

    @work(exclusive=True, exit_on_error=False, group="settings-env")
    async def load_env(self) -> None:
        try:
            variables = await self.app.client.list_env_vars()
        except ClientError as error:
            self.post_message(EnvLoaded({}, str(error)))
            return
        self.post_message(EnvLoaded(variables))

    def on_env_loaded(self, message: EnvLoaded) -> None:
        self.variables = dict(sorted(message.variables.items()))
        self.revealed &= set(self.variables)
        self._show_env(message.error)

    def _show_env(self, error: str = "") -> None:
        table = self.query_one("#settings-env", DataTable)
        selected = self.selected_name()
        table.clear()
        for name, value in self.variables.items():
            shown = value if name in self.revealed else (MASK if value else "(empty)")
            table.add_row(name, shown, str(len(value)), key=name)
        if selected in self.variables:
            table.move_cursor(row=list(self.variables).index(selected))
        state = Text(error, style="red") if error else Text(
            f"{plural(len(self.variables), 'variable')}; values are masked until revealed (v).", style="dim")
        self.query_one("#settings-env-state", Static).update(state)

    def selected_name(self) -> str | None:
        table = self.query_one("#settings-env", DataTable)
        if not self.variables or table.cursor_row is None or table.row_count == 0:
            return None
        try:
            key = table.coordinate_to_cell_key((table.cursor_row, 0)).row_key
        except Exception:  # no rows
            return None
        return key.value

    def action_reveal(self) -> None:
        name = self.selected_name()
        if name is None:
            return
        self.revealed ^= {name}
        self._show_env()

    def action_reveal_all(self) -> None:
        self.revealed = set() if self.revealed == set(self.variables) else set(self.variables)
        self._show_env()

    def action_refresh(self) -> None:
        self.load_info()
        self.load_env()

    def action_add(self) -> None:
        self.app.push_screen(EnvVarModal(), self._after_edit)

    def action_edit(self) -> None:
        name = self.selected_name()
        if name is None:
            self.action_add()
            return
        self.app.push_screen(EnvVarModal(name, self.variables.get(name, "")), self._after_edit)

    def _after_edit(self, result: "tuple[str, str] | None") -> None:
        if not result:
            return
        name, value = result
        verb = "Change" if name in self.variables else "Add"
        self._confirm(f"{verb} {name}?",
                      f"{verb} {name} ({len(value)} characters) on "
                      f"{self.app.connection.display_name}? Running functions see it at once; subscriptions re-run.",
                      {name: value})

    def action_remove(self) -> None:
        name = self.selected_name()
        if name is None:
            return
        self._confirm(f"Remove {name}?", f"Remove {name} from {self.app.connection.display_name}? "
                      "Functions reading it get nothing from now on.", {name: None})

    def _confirm(self, title: str, message: str, changes: dict) -> None:
        connection = self.app.connection
        require = connection.display_name.split(":")[-1] if connection.is_production else None

        def done(confirmed: bool | None) -> None:
            if confirmed:
                self.apply(changes)

        self.app.push_screen(ConfirmModal(title, message, confirm_label="Apply", require_text=require,
                                          danger=any(v is None for v in changes.values())), done)

    @work(exclusive=False, exit_on_error=False, group="settings-update")
    async def apply(self, changes: dict) -> None:
        await self.app.client.update_env_vars(changes)
        name = next(iter(changes))
        self.notify(f"{'Removed' if changes[name] is None else 'Saved'} {name}.")
        self.load_env()
