"""Pilot tests of the console against a real emulator (and a closed port)."""

from __future__ import annotations

import socket

import pytest
from textual.widgets import Button

from console.client import DeploymentClient
from console.connection import Connection
from console.sessions import Settings
from screens.app import ConsoleApp
from screens.widgets.document_grid import DocumentGrid
from screens.widgets.filter_editor import ClauseRow, FilterEditor
from screens.widgets.json_editor import JsonEditor
from screens.widgets.modals import ConfirmModal
from ui_support import connect, until

SIZE = (160, 45)


@pytest.fixture(autouse=True)
def private_config(tmp_path, monkeypatch):
    """Never read or write the developer's own config, state or history."""
    monkeypatch.setenv("CONVEX_CONSOLE_CONFIG_DIR", str(tmp_path / "config"))
    monkeypatch.setenv("CONVEX_CONSOLE_DATA_DIR", str(tmp_path / "data"))
    return tmp_path / "config"


@pytest.fixture
def big_emulator(emulator_factory):
    """The demo app with 300 posts: three pages."""
    return emulator_factory(seed=300)


def page_text(screen) -> str:
    return str(screen.query_one("#page-bar").render())


async def loaded(pilot, app, table: str | None = None):
    await until(pilot, lambda: getattr(app.screen, "tables", None) and not app.screen.page_loading
                and app.screen.table is not None and (table is None or app.screen.table == table))
    return app.screen


async def open_table(pilot, app, table: str):
    screen = await loaded(pilot, app)
    screen.open_table(table)
    await until(pilot, lambda: screen.table == table and not screen.page_loading)
    return screen


async def test_start_open_table_page_forward_back_first_last(big_emulator):
    app = ConsoleApp(connect(big_emulator), "test", None)
    async with app.run_test(size=SIZE) as pilot:
        screen = await loaded(pilot, app)
        assert app.connection_state == "connected"
        await pilot.press("t")
        posts_index = app.table_names.index("posts")
        options = screen.query_one("#tables")
        while options.highlighted != posts_index:
            await pilot.press("down" if (options.highlighted or 0) < posts_index else "up")
        await pilot.press("enter")
        await until(pilot, lambda: screen.table == "posts" and not screen.page_loading)
        assert page_text(screen).startswith("Showing 1–100 of 300")
        grid = screen.query_one(DocumentGrid)
        assert grid.row_count == 100 and grid.fields[:2] == ["_id", "_creationTime"]
        first_page_ids = list(grid.docs)
        await pilot.press("n")
        await until(pilot, lambda: page_text(screen).startswith("Showing 101–200 of 300"))
        assert not set(grid.docs) & set(first_page_ids)
        await pilot.press("n")
        await until(pilot, lambda: page_text(screen).startswith("Showing 201–300 of 300"))
        await pilot.press("p")
        await until(pilot, lambda: page_text(screen).startswith("Showing 101–200 of 300"))
        await pilot.press("g")
        await until(pilot, lambda: page_text(screen).startswith("Showing 1–100 of 300"))
        assert list(grid.docs) == first_page_ids
        await pilot.press("G")
        await until(pilot, lambda: page_text(screen).startswith("Showing 201–300 of 300"))
        times = [doc["_creationTime"] for doc in grid.docs.values()]
        assert times == sorted(times)  # the last page, shown in ascending order
        await pilot.press("o")
        await until(pilot, lambda: screen.spec.order == "desc" and not screen.page_loading)
        times = [doc["_creationTime"] for doc in grid.docs.values()]
        assert times == sorted(times, reverse=True)


async def test_filter_with_the_editor(big_emulator):
    app = ConsoleApp(connect(big_emulator), "test", None)
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_table(pilot, app, "posts")
        await pilot.press("slash")
        await until(pilot, lambda: isinstance(app.screen, FilterEditor))
        editor = app.screen
        row = editor.query_one(ClauseRow)
        row.query_one(".clause-field").value = "published"
        row.query_one(".clause-op").value = "eq"
        row.query_one(".clause-value").value = "true"
        await pilot.press("f2")
        await until(pilot, lambda: app.screen is screen and screen.spec.clauses and not screen.page_loading)
        docs = list(screen.query_one(DocumentGrid).docs.values())
        assert docs and all(doc["published"] is True for doc in docs)
        assert "matching" in page_text(screen)
        assert "published = true" in str(screen.query_one("#query-bar").render())
        await pilot.press("x")
        await until(pilot, lambda: not screen.spec.clauses and not screen.page_loading)
        assert page_text(screen).startswith("Showing 1–100 of 300")


async def test_invalid_filter_value_stays_in_the_editor(big_emulator):
    app = ConsoleApp(connect(big_emulator), "test", None)
    async with app.run_test(size=SIZE) as pilot:
        await open_table(pilot, app, "posts")
        await pilot.press("slash")
        await until(pilot, lambda: isinstance(app.screen, FilterEditor))
        row = app.screen.query_one(ClauseRow)
        row.query_one(".clause-field").value = "title"
        row.query_one(".clause-value").value = "[1, 2"
        await pilot.press("f2")
        await pilot.pause()
        assert isinstance(app.screen, FilterEditor)
        assert "title" in str(app.screen.query_one("#filter-error").render())


async def test_open_document_follow_reference_and_back(big_emulator):
    app = ConsoleApp(connect(big_emulator), "test", None)
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_table(pilot, app, "posts")
        grid = screen.query_one(DocumentGrid)
        post = grid.current_doc
        await pilot.press("enter")
        fields = screen.query_one("#detail-fields")
        assert screen.focused is fields
        fields.highlighted = fields.get_option_index("authorId")
        await pilot.press("enter")
        detail = screen.query_one("#detail")
        await until(pilot, lambda: detail.table == "users")
        assert detail.doc["_id"] == post["authorId"]
        assert screen.back_stack and "reference 1" in str(screen.query_one("#detail-header").render())
        await pilot.press("y")
        assert app.clipboard == post["authorId"]
        await pilot.press("escape")
        assert detail.table == "posts" and detail.doc["_id"] == post["_id"]
        fields.highlighted = fields.get_option_index("title")
        await pilot.press("c")
        assert app.clipboard == post["title"]


async def test_edit_field_edit_document_and_insert(big_emulator):
    app = ConsoleApp(connect(big_emulator), "test", None)
    client = DeploymentClient(connect(big_emulator))
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_table(pilot, app, "posts")
        post = screen.query_one(DocumentGrid).current_doc
        await pilot.press("enter")
        fields = screen.query_one("#detail-fields")
        fields.highlighted = fields.get_option_index("title")
        await pilot.press("e")
        await until(pilot, lambda: isinstance(app.screen, JsonEditor))
        app.screen.query_one("TextArea").text = '"Edited in the console"'
        await pilot.press("f2")
        await until(pilot, lambda: screen.query_one(DocumentGrid).docs.get(post["_id"], {}).get("title")
                    == "Edited in the console")
        stored = await client.get_document("posts", post["_id"])
        assert stored["title"] == "Edited in the console"

        await pilot.press("E")
        await until(pilot, lambda: isinstance(app.screen, JsonEditor))
        text = app.screen.query_one("TextArea").text
        assert '"_id"' not in text and '"content"' in text
        app.screen.query_one("TextArea").text = text.replace('"Edited in the console"', '"Replaced"')
        await pilot.press("f2")
        await until(pilot, lambda: screen.query_one(DocumentGrid).docs.get(post["_id"], {}).get("title") == "Replaced")

        await open_table(pilot, app, "counters")
        await pilot.press("i")
        await until(pilot, lambda: isinstance(app.screen, JsonEditor))
        app.screen.query_one("TextArea").text = '{"name": "visits", "value": 12}'
        await pilot.press("f2")
        await until(pilot, lambda: len(screen.query_one(DocumentGrid).docs) == 1)
        doc = next(iter(screen.query_one(DocumentGrid).docs.values()))
        assert doc["name"] == "visits" and doc["value"] == 12.0
    await client.aclose()


async def test_schema_violation_is_a_notification_not_a_crash(big_emulator):
    app = ConsoleApp(connect(big_emulator), "test", None)
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_table(pilot, app, "counters")
        await pilot.press("i")
        await until(pilot, lambda: isinstance(app.screen, JsonEditor))
        app.screen.query_one("TextArea").text = '{"name": 5n}'
        await pilot.press("f2")
        await until(pilot, lambda: any(n.severity == "error" for n in app._notifications))
        assert app.screen is screen and app.is_running
        assert screen.query_one(DocumentGrid).row_count == 0


async def test_delete_marked_documents_with_confirmation(big_emulator):
    app = ConsoleApp(connect(big_emulator), "test", None)
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_table(pilot, app, "posts")
        grid = screen.query_one(DocumentGrid)
        await pilot.press("space", "down", "space")
        marked = grid.selected_ids()
        assert len(marked) == 2
        await pilot.press("d")
        await until(pilot, lambda: isinstance(app.screen, ConfirmModal))
        await pilot.press("escape")  # cancel: nothing deleted
        await until(pilot, lambda: app.screen is screen)
        assert set(marked) <= set(grid.docs)
        await pilot.press("d")
        await until(pilot, lambda: isinstance(app.screen, ConfirmModal))
        app.screen.query_one("#confirm", Button).press()  # a click can land before the modal's layout
        await until(pilot, lambda: screen.total == 298 and not screen.page_loading)
        assert not set(marked) & set(grid.docs)
        assert page_text(screen).startswith("Showing 1–100 of 298")


async def test_production_delete_asks_for_the_table_name(big_emulator):
    app = ConsoleApp(connect(big_emulator, deployment_type="prod"), "test", None)
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_table(pilot, app, "posts")
        doc_id = screen.query_one(DocumentGrid).current_id
        await pilot.press("d")
        await until(pilot, lambda: isinstance(app.screen, ConfirmModal))
        modal = app.screen
        assert modal.query_one("#confirm").disabled
        await pilot.press(*"post")
        assert modal.query_one("#confirm").disabled
        await pilot.press("s", "enter")
        await until(pilot, lambda: screen.total == 299)
        assert doc_id not in screen.query_one(DocumentGrid).docs


async def test_unreachable_deployment_shows_banner_and_stays_usable():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    connection = Connection.create(f"http://127.0.0.1:{port}", admin_key="local-x|00112233445566778899", kind="local")
    app = ConsoleApp(connection, "test", None)
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: app.connection_state == "unreachable")
        banner = app.screen.query_one("ConnectionBanner")
        assert banner.display and "r: retry" in str(banner.query_one("#banner-text").render())
        assert "Cannot reach" in str(banner.query_one("#banner-text").render())
        await pilot.press("r")
        await until(pilot, lambda: app.connection_state == "unreachable")
        await pilot.press("9")
        assert app.current_mode == "connect"
        app.screen.query_one("#form-name").focus()
        await pilot.press("1")  # a text box takes the digit...
        assert app.current_mode == "connect" and app.screen.query_one("#form-name").value == "1"
        await pilot.press("alt+1")  # ...alt+digit still switches section
        assert app.current_mode == "data"
        await pilot.press("9")
        await pilot.press("f1")  # the text box still has the focus: f1, not ?
        assert type(app.screen).__name__ == "HelpScreen"
        await pilot.press("escape", "alt+1")
        assert app.current_mode == "data" and app.is_running


async def test_keymap_from_config_and_help_lists_bindings(big_emulator, private_config):
    settings = Settings(private_config)
    settings.set_key_binding("data.next-page", "j")
    app = ConsoleApp(connect(big_emulator), "test", settings)
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_table(pilot, app, "posts")
        await pilot.press("j")
        await until(pilot, lambda: page_text(screen).startswith("Showing 101–200"))
        await pilot.press("f1")
        help_table = app.screen.query_one("#help-table")
        rows = [help_table.get_row_at(i) for i in range(help_table.row_count)]
        ids = {row[3]: row[1] for row in rows}
        assert ids["data.next-page"] == "j" and "data.delete" in ids and "app.help" in ids


async def test_command_palette_opens_a_table(big_emulator):
    app = ConsoleApp(connect(big_emulator), "test", None)
    async with app.run_test(size=SIZE) as pilot:
        screen = await loaded(pilot, app)
        await pilot.press("ctrl+p")
        await pilot.press(*"Open table: users")
        await pilot.pause(0.3)
        await pilot.press("enter")
        await until(pilot, lambda: screen.table == "users" and not screen.page_loading)
        assert screen.query_one(DocumentGrid).row_count == 30


async def test_last_table_and_filters_are_restored(big_emulator, private_config):
    settings = Settings(private_config)
    settings.state_key = "emulator"
    app = ConsoleApp(connect(big_emulator), "test", settings)
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_table(pilot, app, "posts")
        from screens.query import FilterClause, QuerySpec

        screen._apply_spec(QuerySpec((FilterClause("published", "eq", False),), order="desc"))
        await until(pilot, lambda: not screen.page_loading)
    again = ConsoleApp(connect(big_emulator), "test", Settings(private_config))
    async with again.run_test(size=SIZE) as pilot:
        screen = await loaded(pilot, again)
        assert screen.table == "posts"
        assert screen.spec.order == "desc" and screen.spec.clauses[0].field == "published"
        assert all(doc["published"] is False for doc in screen.query_one(DocumentGrid).docs.values())


async def test_connect_screen_adds_tests_and_uses_a_profile(big_emulator, private_config):
    settings = Settings(private_config)
    app = ConsoleApp(None, "", settings)
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: type(app.screen).__name__ == "ConnectScreen")
        screen = app.screen
        assert app.connection_state == "disconnected"
        screen.query_one("#form-name").value = "emu"
        screen.query_one("#form-url").value = big_emulator.url
        screen.query_one("#source-file").value = True
        await pilot.pause()
        screen.query_one("#form-key-secret").value = big_emulator.admin_key
        await pilot.click("#form-test")
        await until(pilot, lambda: "✔" in str(screen.query_one("#form-result").render()))
        await pilot.click("#form-save")
        await until(pilot, lambda: "Saved profile emu" in str(screen.query_one("#form-result").render()))
        assert "emu" in settings.load().profiles and settings.secrets()["emu"] == big_emulator.admin_key
        assert big_emulator.admin_key not in str(screen.query_one("#profiles").get_option_at_index(0).prompt)
        profiles = screen.query_one("#profiles")
        profiles.focus()
        profiles.highlighted = 0
        await pilot.press("D")
        assert settings.load().default_profile == "emu"
        await pilot.press("enter")
        await until(pilot, lambda: app.current_mode == "data" and getattr(app.screen, "tables", None)
                    and app.connection_state == "connected")
        assert "posts" in app.table_names and app.origin == "profile emu"


async def test_indexes_and_schema_panes(big_emulator):
    app = ConsoleApp(connect(big_emulator), "test", None)
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_table(pilot, app, "posts")
        await pilot.press("v")
        await until(pilot, lambda: screen.query("#indexes") and screen.query_one("#indexes").row_count >= 5)
        indexes = screen.query_one("#indexes")
        rows = {indexes.get_row_at(i)[0]: indexes.get_row_at(i) for i in range(indexes.row_count)}
        assert rows["by_author_and_published"][1] == "authorId, published" and rows["by_author"][3] == "done"
        await pilot.press("v")
        await until(pilot, lambda: screen.query("#schema") and "defineTable" in str(screen.query_one("#schema").render()))
        schema = str(screen.query_one("#schema").render())
        assert 'authorId: v.id("users"),' in schema and '.index("by_author", ["authorId"])' in schema
        # sort by an index, descending, through the filter editor
        await pilot.press("slash")
        await until(pilot, lambda: isinstance(app.screen, FilterEditor))
        app.screen.query_one("#index-select").value = "by_published"
        app.screen.query_one("#order-select").value = "desc"
        await pilot.press("f2")
        await until(pilot, lambda: screen.spec.index == "by_published" and not screen.page_loading)
        published = [doc["published"] for doc in screen.query_one(DocumentGrid).docs.values()]
        assert published[0] is True and published == sorted(published, reverse=True)


async def test_screen_factory_hides_only_a_missing_section_module(big_emulator, tmp_path, monkeypatch):
    """A section module that does not exist yet is a placeholder; one that exists but fails to
    import (a real bug) reaches the error modal instead of being hidden."""
    import sys

    from screens import app as app_module
    from screens.placeholder import PlaceholderScreen
    from screens.widgets.modals import ErrorModal

    (tmp_path / "broken_section_for_test.py").write_text("import module_that_does_not_exist_anywhere\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setitem(app_module.SCREENS, "schedules", ("broken_section_for_test", "Nope"))
    monkeypatch.setitem(app_module.SCREENS, "files", ("screens.section_not_written_yet", "Nope"))
    monkeypatch.delitem(sys.modules, "broken_section_for_test", raising=False)
    app = ConsoleApp(connect(big_emulator), "test", None)
    async with app.run_test(size=SIZE) as pilot:
        await loaded(pilot, app)
        await pilot.press("4")
        await until(pilot, lambda: isinstance(app.screen, PlaceholderScreen))
        await pilot.press("1")
        await until(pilot, lambda: app.current_mode == "data")
        await pilot.press("3")
        await until(pilot, lambda: isinstance(app.screen, ErrorModal))
        assert "module_that_does_not_exist_anywhere" in app.screen.message
        assert "Schedules" in app.screen.title_text


async def test_shared_ui_state_is_defined_before_any_screen_sets_it(big_emulator):
    app = ConsoleApp(connect(big_emulator), "test", None)
    assert app.bearer_token is None and app.acting_identity is None and app.function_paths == []
    app.session.remember_ui("functions", pins=[{"path": "posts:list"}])
    app.session.remember_ui("functions", last="posts:list")
    assert app.session.ui_state("functions") == {"pins": [{"path": "posts:list"}], "last": "posts:list"}
    assert app.session.ui_state("http") == {}


async def test_number_keys_work_on_arriving_at_the_auth_screen(big_emulator):
    from textual import events
    from textual.widgets import TextArea

    from screens.auth import AuthScreen
    from screens.help import HelpScreen

    app = ConsoleApp(connect(big_emulator), "test", None)
    async with app.run_test(size=SIZE) as pilot:
        await loaded(pilot, app)
        await pilot.press("5")
        await until(pilot, lambda: isinstance(app.screen, AuthScreen))
        screen = app.screen
        assert not isinstance(screen.focused, TextArea)
        await pilot.press("question_mark")
        await until(pilot, lambda: isinstance(app.screen, HelpScreen))
        await pilot.press("escape")
        await until(pilot, lambda: app.screen is screen)
        await pilot.press("1")  # a section key, not a digit typed into the token box
        await until(pilot, lambda: app.current_mode == "data")
        await pilot.press("5")
        await until(pilot, lambda: app.screen is screen)
        assert screen.token == ""
        await pilot.press("enter")
        await until(pilot, lambda: screen.focused is screen.query_one("#auth-token", TextArea))
        await pilot.press("1", "2")
        await until(pilot, lambda: screen.token == "12")  # in the box, digits type
        await pilot.press("escape")
        await until(pilot, lambda: not isinstance(screen.focused, TextArea))
        screen.post_message(events.Paste("Bearer abc.def.ghi"))  # a paste outside the boxes is a token
        await until(pilot, lambda: screen.token == "Bearer abc.def.ghi"
                    and screen.focused is screen.query_one("#auth-token", TextArea))


async def test_one_escape_closes_the_json_editor_from_its_text_box(big_emulator):
    from textual.widgets import TextArea

    app = ConsoleApp(connect(big_emulator), "test", None)
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_table(pilot, app, "counters")
        for attempt in range(2):  # twice: the second editor must start afresh, not half-closed
            await pilot.press("i")
            await until(pilot, lambda: isinstance(app.screen, JsonEditor))
            editor = app.screen
            await until(pilot, lambda: isinstance(editor.focused, TextArea))
            await pilot.press("x", "escape")  # typing first: the text box really has the keys
            await until(pilot, lambda: app.screen is screen)
        assert screen.query_one(DocumentGrid).row_count == 0  # cancelled: nothing inserted


async def test_confirm_modal_cancel_label(big_emulator):
    app = ConsoleApp(connect(big_emulator), "test", None)
    answers: list[bool] = []
    async with app.run_test(size=SIZE) as pilot:
        screen = await loaded(pilot, app)
        app.push_screen(ConfirmModal("Cancel job", "Cancel it?", confirm_label="Cancel job",
                                     cancel_label="Keep job"), answers.append)
        await until(pilot, lambda: isinstance(app.screen, ConfirmModal) and app.screen.query("#cancel"))
        assert str(app.screen.query_one("#cancel", Button).label) == "Keep job"
        assert str(app.screen.query_one("#confirm", Button).label) == "Cancel job"
        await pilot.press("escape")
        await until(pilot, lambda: app.screen is screen and answers == [False])
        app.push_screen(ConfirmModal("Delete", "Sure?"), answers.append)
        await until(pilot, lambda: isinstance(app.screen, ConfirmModal) and app.screen.query("#cancel"))
        assert str(app.screen.query_one("#cancel", Button).label) == "Cancel"
