"""The Connect screen: saved profiles, discovered deployments, and a form to add one
(URL + where the key comes from: an environment variable's name or the private secrets file).

Test-connection, delete, set default; enter connects."""

from __future__ import annotations

from typing import Any

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.message import Message
from textual.widgets import Button, Input, Label, OptionList, RadioButton, RadioSet, Static
from textual.widgets.option_list import Option

from console.connection import Connection, InvalidConnection
from screens.base import ConsoleScreen
from screens.widgets.modals import ConfirmModal


def _settings(app) -> Any:
    return getattr(app.session, "settings", None)


def list_profiles(app) -> list:
    settings = _settings(app)
    if settings is None or not hasattr(settings, "load"):
        return []
    return list(settings.load().profiles.values())


def default_profile(app) -> str | None:
    settings = _settings(app)
    if settings is None or not hasattr(settings, "load"):
        return None
    return settings.load().default_profile


def connect_profile(app, name: str) -> None:
    """Switch the app to a saved profile; a missing key is a notification, not a crash."""
    settings = _settings(app)
    try:
        connection = settings.connection_for(name)
    except Exception as error:  # ProfileError: env var unset, secret missing, bad URL
        app.notify(str(error), title="Cannot use profile", severity="error")
        return
    app.run_worker(app.use_connection(connection, f"profile {name}", name), exclusive=True, group="switch",
                   exit_on_error=False)


class Tested(Message):
    def __init__(self, label: str, ok: bool, text: str) -> None:
        super().__init__()
        self.label = label
        self.ok = ok
        self.text = text


class ConnectScreen(ConsoleScreen):
    BINDINGS = [
        Binding("enter", "connect", "Connect", id="connect.connect"),
        Binding("t", "test", "Test", id="connect.test"),
        Binding("D", "set_default", "Set default", id="connect.set-default"),
        Binding("d,delete", "delete", "Delete", id="connect.delete"),
        Binding("a", "add", "Add", id="connect.add"),
        Binding("r", "refresh", "Refresh", id="connect.refresh"),
        # The form's text boxes take plain keys (1-9, t, q): esc is the way out of them.
        Binding("escape", "leave_form", "Leave form", show=False, id="connect.leave-form"),
    ]
    DEFAULT_CSS = """
    #connect-form { min-width: 46; }
    """

    def __init__(self) -> None:
        super().__init__()
        self.discovered: list = []

    def compose_body(self) -> ComposeResult:
        with Horizontal(id="connect-body"):
            with Vertical(id="connect-lists"):
                yield Label("Saved profiles", classes="pane-title")
                yield OptionList(id="profiles")
                yield Label("Discovered here", classes="pane-title")
                yield OptionList(id="discovered")
                yield Static("", id="connect-result")
            with Vertical(id="connect-form"):
                yield Label("Add a deployment", classes="pane-title")
                yield Input(placeholder="profile name, e.g. prod", id="form-name")
                yield Input(placeholder="URL: https://NAME.convex.cloud", id="form-url")
                yield Label("Admin key from:")
                with RadioSet(id="form-source"):
                    yield RadioButton("an environment variable (its name is saved)", value=True, id="source-env")
                    yield RadioButton("the private secrets file (0600)", id="source-file")
                    yield RadioButton("no key", id="source-none")
                yield Input(placeholder="env var, e.g. CONVEX_ADMIN_KEY", id="form-key-env")
                yield Input(placeholder="admin key (kept in secrets.toml)", password=True,
                            id="form-key-secret")
                with Horizontal(classes="dialog-buttons"):
                    yield Button("Test", id="form-test")
                    yield Button("Save", variant="primary", id="form-save")
                yield Static("", id="form-result", markup=False)

    def on_mount(self) -> None:
        self.refill()
        self.discover()
        self.query_one("#profiles", OptionList).focus()

    # -- lists ---------------------------------------------------------------------

    def refill(self) -> None:
        profiles = self.query_one("#profiles", OptionList)
        kept = profiles.highlighted
        profiles.clear_options()
        default = default_profile(self.app)
        for profile in list_profiles(self.app):
            text = Text()
            text.append("★ " if profile.name == default else "  ", style="yellow")
            text.append(profile.name.ljust(16), style="bold")
            text.append(f" {profile.url}  ", style="cyan")
            text.append(f"key: {profile.key_source}", style="dim")
            profiles.add_option(Option(text, id=f"profile:{profile.name}"))
        if not profiles.option_count:
            profiles.add_option(Option(Text("No saved profiles: add one on the right.", style="dim"), disabled=True))
        elif kept is not None:
            profiles.highlighted = min(kept, profiles.option_count - 1)
        discovered = self.query_one("#discovered", OptionList)
        discovered.clear_options()
        for number, item in enumerate(self.discovered):
            text = Text()
            text.append(item.connection.display_name.ljust(24), style="bold")
            text.append(f" {item.connection.url}  ", style="cyan")
            text.append(item.source, style="dim")
            discovered.add_option(Option(text, id=f"found:{number}"))
        if not discovered.option_count:
            discovered.add_option(Option(Text("Nothing found in this folder or the environment.", style="dim"),
                                         disabled=True))

    @work(exclusive=True, exit_on_error=False, group="discover")
    async def discover(self) -> None:
        from console.discovery import discover

        found = discover()
        self.post_message(Discovered(found))

    def on_discovered(self, message: "Discovered") -> None:
        self.discovered = message.items
        self.refill()

    def _selected(self) -> tuple[str, str] | None:
        focused = self.focused
        if isinstance(focused, OptionList) and focused.id in ("profiles", "discovered"):
            if focused.highlighted is not None:
                option = focused.get_option_at_index(focused.highlighted)
                if option.id and not option.disabled:
                    kind, _, value = option.id.partition(":")
                    return kind, value
        return None

    def _connection_of(self, kind: str, value: str) -> tuple[Connection, str, str | None] | None:
        if kind == "profile":
            try:
                return _settings(self.app).connection_for(value), f"profile {value}", value
            except Exception as error:  # the profile's key is missing
                self.notify(str(error), title="Cannot use profile", severity="error")
                return None
        item = self.discovered[int(value)]
        return item.connection, item.origin, None

    # -- actions ------------------------------------------------------------------------

    @on(OptionList.OptionSelected)
    def _chosen(self, event: OptionList.OptionSelected) -> None:
        if event.option_list.id in ("profiles", "discovered"):
            self.action_connect()

    def action_connect(self) -> None:
        selected = self._selected()
        if selected is None:
            return
        found = self._connection_of(*selected)
        if found is not None:
            connection, origin, profile = found
            self.app.run_worker(self.app.use_connection(connection, origin, profile), exclusive=True,
                                group="switch", exit_on_error=False)

    def action_test(self) -> None:
        selected = self._selected()
        if selected is None:
            self._test_form()
            return
        found = self._connection_of(*selected)
        if found is not None:
            self.test_connection(found[0], "#connect-result")

    @work(exclusive=True, exit_on_error=False, group="test")
    async def test_connection(self, connection: Connection, target: str) -> None:
        from console.discovery import verify

        self.post_message(Tested(target, False, f"Testing {connection.display_name}…"))
        result = await verify(connection)
        self.post_message(Tested(target, result.ok, result.message))

    def on_tested(self, message: Tested) -> None:
        style = "green" if message.ok else "red"
        symbol = "✔" if message.ok else "✖"
        self.query_one(message.label, Static).update(Text(f"{symbol} {message.text}", style=style))

    def action_set_default(self) -> None:
        selected = self._selected()
        if selected is None or selected[0] != "profile":
            self.notify("Pick a saved profile first.")
            return
        _settings(self.app).set_default(selected[1])
        self.notify(f"{selected[1]} is the default profile")
        self.refill()

    def action_delete(self) -> None:
        selected = self._selected()
        if selected is None or selected[0] != "profile":
            self.notify("Pick a saved profile to delete.")
            return
        name = selected[1]

        def done(confirmed: bool | None) -> None:
            if confirmed:
                _settings(self.app).delete_profile(name)
                self.notify(f"Deleted profile {name}")
                self.refill()

        self.app.push_screen(ConfirmModal("Delete profile", f"Delete the saved profile {name}?\n"
                                          "Its stored key (if any) is removed too.", confirm_label="Delete"), done)

    def action_add(self) -> None:
        self.query_one("#form-name", Input).focus()

    def action_leave_form(self) -> None:
        """Back to the profiles list, where the section keys work again."""
        self.query_one("#profiles", OptionList).focus()

    def check_action(self, action: str, parameters: tuple) -> bool | None:
        if action == "leave_form":  # only inside the form: elsewhere esc stays free
            focused = self.focused
            return focused is not None and self.query_one("#connect-form") in focused.ancestors
        return True

    def action_refresh(self) -> None:
        self.refill()
        self.discover()

    # -- the form -------------------------------------------------------------------

    def _form_connection(self) -> tuple[Any, str | None]:
        """The profile described by the form and the secret to store (if any)."""
        from console.sessions import Profile

        name = self.query_one("#form-name", Input).value.strip()
        url = self.query_one("#form-url", Input).value.strip()
        source = self.query_one("#form-source", RadioSet).pressed_button
        source_id = source.id if source is not None else "source-none"
        profile = Profile(name=name or "unnamed", url=url)
        secret = None
        if source_id == "source-env":
            variable = self.query_one("#form-key-env", Input).value.strip()
            if not variable:
                raise ValueError("Give the name of the environment variable that holds the key")
            profile.admin_key_env = variable
        elif source_id == "source-file":
            secret = self.query_one("#form-key-secret", Input).value.strip()
            if not secret:
                raise ValueError("Paste the admin key (it is stored in the private secrets file)")
        return profile, secret

    def _test_form(self) -> None:
        try:
            profile, secret = self._form_connection()
            if secret is None and profile.admin_key_env:
                connection = _settings(self.app).connection_for(profile)
            else:
                connection = Connection.create(profile.url, admin_key=secret)
        except (ValueError, InvalidConnection) as error:
            self.query_one("#form-result", Static).update(Text(f"✖ {error}", style="red"))
            return
        self.test_connection(connection, "#form-result")

    @on(Button.Pressed, "#form-test")
    def _test_pressed(self) -> None:
        self._test_form()

    @on(Button.Pressed, "#form-save")
    def _save_pressed(self) -> None:
        result = self.query_one("#form-result", Static)
        if not self.query_one("#form-name", Input).value.strip():
            result.update(Text("✖ Give the profile a name", style="red"))
            return
        try:
            profile, secret = self._form_connection()
            _settings(self.app).save_profile(profile, secret=secret)
        except (ValueError, InvalidConnection) as error:
            result.update(Text(f"✖ {error}", style="red"))
            return
        self.query_one("#form-key-secret", Input).value = ""
        result.update(Text(f"✔ Saved profile {profile.name} (key: {profile.key_source})", style="green"))
        self.refill()

    @on(RadioSet.Changed, "#form-source")
    def _source_changed(self, event: RadioSet.Changed) -> None:
        chosen = event.pressed.id
        self.query_one("#form-key-env", Input).display = chosen == "source-env"
        self.query_one("#form-key-secret", Input).display = chosen == "source-file"


class Discovered(Message):
    def __init__(self, items: list) -> None:
        super().__init__()
        self.items = items
