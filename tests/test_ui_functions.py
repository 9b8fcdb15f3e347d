"""Pilot tests of the Functions screen against a real emulator (the demo app)."""

from __future__ import annotations


import pytest

from console.client import DeploymentClient
from console.connection import Connection
from console.sessions import Settings
from screens.app import ConsoleApp
from screens.functions import FunctionsScreen, HistoryList
from screens.widgets.args_editor import ArgsEditor
from screens.widgets.function_tree import FunctionTree
from screens.widgets.result_view import ResultView
from ui_support import connect, until

SIZE = (160, 45)


@pytest.fixture(autouse=True)
def private_config(tmp_path, monkeypatch):
    monkeypatch.setenv("CONVEX_CONSOLE_CONFIG_DIR", str(tmp_path / "config"))
    monkeypatch.setenv("CONVEX_CONSOLE_DATA_DIR", str(tmp_path / "data"))
    return tmp_path / "config"


def make_app(emulator, config_dir) -> ConsoleApp:
    """An app that starts on the Functions screen (its last screen), skipping the Data screen."""
    settings = Settings(config_dir)
    settings.save_state("emulator", {**settings.load_state("emulator"), "screen": "functions"})
    return ConsoleApp(connect(emulator), "test", settings)


async def open_functions(pilot, app) -> FunctionsScreen:
    if app.current_mode != "functions":
        app.switch_section("functions")
    await until(pilot, lambda: isinstance(app.screen, FunctionsScreen) and app.screen.spec_loaded)
    return app.screen


async def choose(pilot, screen: FunctionsScreen, path: str) -> None:
    entry = next(e for e in screen.entries if e.path == path)
    screen.select_function(entry)
    screen.query_one(FunctionTree).select_path(path)
    await pilot.pause()
    assert screen.entry.path == path


async def run_and_wait(pilot, screen: FunctionsScreen, count_before: int | None = None):
    view = screen.query_one(ResultView)
    previous = view.outcome
    await pilot.press("ctrl+r")
    await until(pilot, lambda: view.outcome is not None and view.outcome is not previous)
    return view.outcome


def head_text(screen) -> str:
    return str(screen.query_one("#result-head").render())


async def test_spec_tree_filter_types_and_skeleton(emulator, private_config):
    app = make_app(emulator, private_config)
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_functions(pilot, app)
        tree = screen.query_one(FunctionTree)
        assert any(e.path == "users:viewer" for e in tree.visible_entries)
        internal = next(e for e in tree.entries if e.path == "users:getById")
        assert internal.is_internal and "internal" in internal.label().plain
        screen.query_one("#fn-filter").focus()
        await pilot.press(*"posts get")
        await until(pilot, lambda: {e.path for e in tree.visible_entries} == {"posts:get", "posts:getByAuthor",
                                                                               "posts:getByAuthorAndStatus"})
        await pilot.press("enter")
        await until(pilot, lambda: screen.entry is not None and screen.entry.path == "posts:get")
        editor = screen.query_one(ArgsEditor)
        assert 'id: Id<"posts">' in str(editor.query_one("#args-hint").render())
        assert '"<Id<posts>>"' in editor.text
        assert 'Id<"posts">' in str(screen.query_one("#fn-header").render()) or "returns" in str(screen.query_one("#fn-header").render())
        # The placeholder is refused locally, at its path, without calling the deployment.
        outcome = await run_and_wait(pilot, screen)
        assert outcome.status == "invalid" and ".id" in outcome.error_message and "placeholder" in outcome.error_message
        # The command palette's entry point: open a function by path.
        assert "users:viewer" in app.function_paths
        assert screen.open_function("users:viewer") and not screen.open_function("nope:nothing")
        await until(pilot, lambda: tree.cursor_node is not None and tree.cursor_node.data is not None
                    and tree.cursor_node.data.path == "users:viewer" and len(tree.visible_entries) > 3)
        assert screen.entry.path == "users:viewer" and screen.query_one("#fn-filter").value == ""
        # HTTP routes from the spec are listed apart and point to the HTTP screen.
        routes = [e for e in tree.entries if e.is_http]
        assert routes and all(e.module == "HTTP routes" and e.label().plain.startswith("H ") for e in routes)
        screen.select_function(routes[0])
        outcome = await run_and_wait(pilot, screen)
        assert outcome.status == "info" and "HTTP screen" in outcome.note


async def test_run_as_admin_with_json5_args_and_local_errors(emulator, private_config):
    app = make_app(emulator, private_config)
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_functions(pilot, app)
        await choose(pilot, screen, "posts:list")
        editor = screen.query_one(ArgsEditor)
        editor.set_text("{ limit: 2, // two posts\n}")
        outcome = await run_and_wait(pilot, screen)
        assert outcome.status == "success", outcome.error_message
        assert isinstance(outcome.value, list) and len(outcome.value) == 2
        assert 'Id<"posts">' in screen.query_one(ResultView).body_text  # ids marked with their table
        copied = []
        app.copy_to_clipboard = copied.append
        screen.query_one(FunctionTree).focus()
        await pilot.press("c")
        assert copied and copied[0].startswith("[") and '"_id"' in copied[0]
        assert outcome.elapsed is not None and outcome.who == "admin"
        assert "✔ success" in head_text(screen)
        # Bad JSON: line and column, nothing sent.
        editor.set_text("{ limit: 2,,}")
        outcome = await run_and_wait(pilot, screen)
        assert outcome.status == "invalid" and "Line 1, column 12" in outcome.error_message
        # Validator failure: the offending path and what to type.
        editor.set_text("{ limit: 'ten' }")
        outcome = await run_and_wait(pilot, screen)
        assert outcome.status == "invalid" and ".limit" in outcome.error_message and "expected number" in outcome.error_message
        editor.set_text("{ limit: 2n }")
        outcome = await run_and_wait(pilot, screen)
        assert "written 2, without n" in outcome.error_message
        editor.set_text("[1, 2]")
        outcome = await run_and_wait(pilot, screen)
        assert outcome.status == "invalid" and "expected" in outcome.error_message
        # Moving to another function and back keeps what was typed.
        await choose(pilot, screen, "posts:get")
        assert "limit" not in editor.text
        await choose(pilot, screen, "posts:list")
        assert editor.text == "[1, 2]"


async def test_form_view_for_flat_args(emulator, private_config):
    app = make_app(emulator, private_config)
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_functions(pilot, app)
        await choose(pilot, screen, "counters:increment")
        editor = screen.query_one(ArgsEditor)
        editor.set_text("{ name: 'visits', by: 3 }")
        await pilot.press("f3")
        assert editor.mode == "form"
        inputs = list(editor.query(".form-field"))
        assert [box.value for box in inputs] == ["3", "visits"] or [box.value for box in inputs] == ["visits", "3"]
        outcome = await run_and_wait(pilot, screen)
        assert outcome.status == "success" and outcome.value == 3.0
        await pilot.press("f3")
        assert editor.mode == "json" and "visits" in editor.text


async def test_run_as_identity_returns_it_from_viewer(emulator, tmp_path):
    app = make_app(emulator, tmp_path / "config")
    settings = app.session.settings
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_functions(pilot, app)
        await choose(pilot, screen, "users:viewer")
        outcome = await run_and_wait(pilot, screen)
        assert outcome.status == "success" and outcome.value is None  # admin: no user identity
        screen.query_one("#identity-subject").value = "user_42"
        screen.query_one("#identity-name").value = "Ann"
        screen.query_one("#identity-claims").value = "{ role: 'editor' }"
        await pilot.press("f4")
        assert screen.run_as == "identity"
        outcome = await run_and_wait(pilot, screen)
        assert outcome.status == "success", outcome.error_message
        assert outcome.value["subject"] == "user_42" and outcome.value["name"] == "Ann"
        assert outcome.value["role"] == "editor"
        assert outcome.value["tokenIdentifier"].endswith("|user_42")
        assert outcome.who == "acting as user_42"
        runs = settings.history.runs("emulator", path="users:viewer")
        assert [run.identity for run in runs] == ["acting as user_42", "admin"]
    # Saved per profile: a new app on the same settings prefills the identity.
    app2 = make_app(emulator, tmp_path / "config")
    async with app2.run_test(size=SIZE) as pilot:
        screen = await open_functions(pilot, app2)
        assert screen.query_one("#identity-subject").value == "user_42"


async def test_jwt_mode_without_token_and_internal_functions(emulator, private_config):
    app = make_app(emulator, private_config)
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_functions(pilot, app)
        await choose(pilot, screen, "posts:countAll")
        screen.query_one("#fn-run-as").value = "jwt"
        await pilot.pause()
        outcome = await run_and_wait(pilot, screen)
        assert outcome.status == "invalid" and "Auth screen" in outcome.error_message
        app.bearer_token = "header.payload.signature"
        outcome = await run_and_wait(pilot, screen)
        assert outcome.status == "invalid" and "Internal functions need admin" in outcome.error_message
        screen.query_one("#fn-run-as").value = "admin"
        await pilot.pause()
        outcome = await run_and_wait(pilot, screen)
        assert outcome.status == "success" and isinstance(outcome.value, float)


async def test_function_errors_convex_error_and_unknown_function(emulator, private_config):
    app = make_app(emulator, private_config)
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_functions(pilot, app)
        await choose(pilot, screen, "users:me")
        outcome = await run_and_wait(pilot, screen)
        assert outcome.status == "error" and "Unauthorized" in outcome.error_message
        assert "function error" in head_text(screen)
        await choose(pilot, screen, "users:createUser")
        screen.query_one(ArgsEditor).set_text("{clerkId: 'dup', email: 'd@x.io'}")
        first = await run_and_wait(pilot, screen)
        assert first.status == "success"
        second = await run_and_wait(pilot, screen)
        assert second.status == "error" and second.error_data == {"code": "USER_EXISTS", "clerkId": "dup"}
        error_text = str(screen.query_one("#result-error").render())
        assert "ConvexError" in error_text and "USER_EXISTS" in error_text
        # A function removed since the spec was loaded: the deployment's message, in the pane.
        entry = next(e for e in screen.entries if e.path == "users:me")
        from dataclasses import replace

        gone = replace(entry, spec=replace(entry.spec, identifier="users.js:gone"))
        screen.select_function(gone)
        await pilot.pause()
        outcome = await run_and_wait(pilot, screen)
        assert outcome.status == "error" and "Could not find public function" in outcome.error_message
        # A path typed in the filter that the spec does not have: sent anyway, the answer shown.
        screen.query_one("#fn-filter").focus()
        await pilot.press(*"nope:missing", "enter")
        await until(pilot, lambda: screen.entry.path == "nope:missing")
        assert "Not in this deployment's function spec" in str(screen.query_one("#fn-header").render())
        outcome = await run_and_wait(pilot, screen)
        assert outcome.status == "error" and "Could not find" in outcome.error_message and "nope:missing" in outcome.error_message


async def test_history_rerun_copy_diff_and_pins(emulator, tmp_path):
    app = make_app(emulator, tmp_path / "config")
    settings = app.session.settings
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_functions(pilot, app)
        await choose(pilot, screen, "counters:increment")
        editor = screen.query_one(ArgsEditor)
        editor.set_text("{name: 'hits', by: 1}")
        await run_and_wait(pilot, screen)
        editor.set_text("{name: 'hits', by: 10}")
        await run_and_wait(pilot, screen)
        history = screen.query_one(HistoryList)
        await pilot.press("h")
        await until(pilot, lambda: len(history.items) == 2 and history.has_focus)
        assert history.items[0].args == {"name": "hits", "by": 10.0}
        history.highlighted = 1  # the older run: by 1
        view = screen.query_one(ResultView)
        before = view.outcome
        await pilot.press("x")
        await until(pilot, lambda: view.outcome is not before and len(history.items) == 3)
        assert view.outcome.value == 12.0  # 1 + 10 + 1
        assert history.items[0].args == {"name": "hits", "by": 1.0}
        # Persisted as it happens: another store on the same file sees all three.
        assert len(Settings(tmp_path / "config").history.runs("emulator", path="counters:increment")) == 3
        # Diff two results.
        history.highlighted = 0
        await pilot.press("d")
        history.highlighted = 2
        await pilot.press("d")
        assert "Diff" in head_text(screen)
        assert "-12" in view.body_text.splitlines() and "+1" in view.body_text.splitlines()
        # Copy (OSC 52) goes through the app's clipboard.
        copied = []
        app.copy_to_clipboard = copied.append
        await pilot.press("c")
        assert copied and "hits" in copied[0]
        # Pin with a name: shown first, saved in the profile's state.
        await pilot.press("p")
        await until(pilot, lambda: app.screen.__class__.__name__ == "PinModal")
        await pilot.press("ctrl+u", *"big bump", "enter")
        await until(pilot, lambda: history.items and history.items[0].kind == "pin")
        assert history.items[0].label == "big bump"
        pins = Settings(tmp_path / "config").load_state("emulator")["functions"]["pins"]
        assert pins[0]["name"] == "big bump" and pins[0]["path"] == "counters:increment"
        # Enter loads a pin's args into the editor.
        history.highlighted = 0
        await pilot.press("enter")
        assert "hits" in editor.text


async def test_paginated_query_next_page(emulator, private_config):
    app = make_app(emulator, private_config)
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_functions(pilot, app)
        await choose(pilot, screen, "posts:paginate")
        editor = screen.query_one(ArgsEditor)
        assert "numItems" in editor.text
        editor.set_text("{paginationOpts: {numItems: 5, cursor: null}}")
        first = await run_and_wait(pilot, screen)
        assert first.status == "success" and len(first.value["page"]) == 5
        await until(pilot, lambda: screen.next_cursor is not None)
        assert not screen.query_one("#fn-next").disabled
        screen.query_one(FunctionTree).focus()
        view = screen.query_one(ResultView)
        await pilot.press("n")
        await until(pilot, lambda: view.outcome is not first and view.outcome.status == "success")
        second = view.outcome
        assert screen.page_number == 2
        assert {d["_id"] for d in second.value["page"]}.isdisjoint({d["_id"] for d in first.value["page"]})
        assert first.value["continueCursor"] in editor.text


async def test_huge_result_is_paged_not_frozen(emulator_factory, private_config):
    emulator = emulator_factory(seed=300)
    app = make_app(emulator, private_config)
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_functions(pilot, app)
        await choose(pilot, screen, "posts:list")
        screen.query_one(ArgsEditor).set_text("{limit: 300}")
        outcome = await run_and_wait(pilot, screen)
        view = screen.query_one(ResultView)
        assert outcome.status == "success" and len(outcome.value) == 300
        assert view.has_more
        assert "truncated" in str(view.query_one("#result-more").render())
        shown = len(view._shown)
        screen.query_one(FunctionTree).focus()
        await pilot.press("m")
        assert len(view._shown) > shown
        assert outcome.size and outcome.size > 10_000


async def test_server_down_mid_session_is_a_transport_error(emulator_factory, private_config):
    emulator = emulator_factory(seed=10)
    app = make_app(emulator, private_config)
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_functions(pilot, app)
        await choose(pilot, screen, "posts:list")
        emulator.stop()
        outcome = await run_and_wait(pilot, screen)
        assert outcome.status == "transport"
        assert "Cannot reach" in outcome.error_message and "outcome is unknown" in outcome.error_message
        assert "transport error" in head_text(screen)
        await until(pilot, lambda: app.connection_state == "unreachable")
        # Still responsive: the filter still filters.
        screen.query_one("#fn-filter").value = "viewer"
        await until(pilot, lambda: [e.path for e in screen.query_one(FunctionTree).visible_entries] == ["users:viewer"])


async def test_watch_a_query_updates_live(emulator, private_config):
    connection = connect(emulator)
    app = make_app(emulator, private_config)
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_functions(pilot, app)
        await choose(pilot, screen, "counters:get")
        screen.query_one(ArgsEditor).set_text("{name: 'live'}")
        screen.query_one(FunctionTree).focus()
        await pilot.press("w")
        view = screen.query_one(ResultView)
        await until(pilot, lambda: view.outcome is not None and view.outcome.live)
        start = view.outcome.value
        async with DeploymentClient(connection) as client:
            await client.mutation("counters:increment", {"name": "live", "by": 5.0})
        await until(pilot, lambda: view.outcome.value == start + 5.0)
        assert view.outcome.live
        await pilot.press("w")
        assert not screen.watching


async def test_watch_falls_back_to_polling(emulator):
    """Without live sync, the watch polls over HTTP and says so."""
    from screens.functions import RunRequest
    from screens.widgets.function_tree import FunctionEntry
    from screens.widgets.live_query import _poll

    connection = connect(emulator)
    async with DeploymentClient(connection) as client:
        spec = next(s for s in await client.api_spec() if s.identifier == "counters.js:get")
        request = RunRequest(FunctionEntry(spec), {"name": "polled"}, "admin")
        polls = _poll(client, request, 0.01, "refused")
        first = await polls.__anext__()
        await client.mutation("counters:increment", {"name": "polled"})
        second = await polls.__anext__()
        await polls.aclose()
    assert first.status == second.status == "success"
    assert (first.value, second.value) == (0.0, 1.0)
    assert second.live == "poll 2" and "Polling every" in second.note and "refused" in second.note


async def test_production_mutations_ask_first(emulator, private_config):
    settings = Settings(private_config)
    settings.save_state("emulator", {"screen": "functions"})
    connection = Connection.create(emulator.url, admin_key=emulator.admin_key, kind="emulator", deployment_type="prod")
    app = ConsoleApp(connection, "test", settings)
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_functions(pilot, app)
        await choose(pilot, screen, "counters:increment")
        screen.query_one(ArgsEditor).set_text("{name: 'prod'}")
        await pilot.press("ctrl+r")
        await until(pilot, lambda: app.screen.__class__.__name__ == "ConfirmModal")
        await pilot.press("escape")  # cancelled: nothing runs
        await until(pilot, lambda: app.screen is screen)
        assert screen.query_one(ResultView).outcome is None
        await pilot.press("ctrl+r")
        await until(pilot, lambda: app.screen.__class__.__name__ == "ConfirmModal")
        await pilot.click("#confirm")
        view = screen.query_one(ResultView)
        await until(pilot, lambda: view.outcome is not None)
        assert view.outcome.status == "success" and view.outcome.value == 1.0


async def test_switching_deployment_runs_on_the_new_one(emulator_factory, private_config):
    first, second = emulator_factory(seed=0), emulator_factory(seed=0)
    app = make_app(first, private_config)
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_functions(pilot, app)
        await choose(pilot, screen, "counters:increment")
        screen.query_one(ArgsEditor).set_text("{name: 'n', by: 5}")
        assert (await run_and_wait(pilot, screen)).value == 5.0
        await app.use_connection(connect(second), "test")  # every section starts again
        screen = await open_functions(pilot, app)
        await choose(pilot, screen, "counters:increment")
        screen.query_one(ArgsEditor).set_text("{name: 'n', by: 5}")
        assert (await run_and_wait(pilot, screen)).value == 5.0  # a fresh counter: the second deployment


async def test_token_from_auth_switches_run_as_and_back(emulator, private_config):
    app = make_app(emulator, private_config)
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_functions(pilot, app)
        run_as = screen.query_one("#fn-run-as")
        assert run_as.value == "admin"
        app.switch_section("schedules")  # the Auth screen sets the token while Functions is not shown
        await until(pilot, lambda: app.current_mode == "schedules")
        app.bearer_token = "header.payload.signature"
        app.switch_section("functions")
        await until(pilot, lambda: app.screen is screen and run_as.value == "jwt")
        await until(pilot, lambda: any("token from the Auth screen" in n.message for n in app._notifications))
        app.switch_section("schedules")
        await until(pilot, lambda: app.current_mode == "schedules")
        app.bearer_token = None
        app.switch_section("functions")
        await until(pilot, lambda: app.screen is screen and run_as.value == "admin")
        await until(pilot, lambda: any("running as admin" in n.message for n in app._notifications))
