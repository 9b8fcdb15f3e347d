"""The Data screen's live page against a real emulator: another client inserts, patches and
deletes documents, and the grid follows by diff (no rebuild); the polling fallback when the
deployment refuses the sync socket."""

from __future__ import annotations


import pytest

from console.client import DeploymentClient
from screens.app import ConsoleApp
from screens.data import POLLING_NOTE
from screens.widgets.document_grid import DocumentGrid
from screens.widgets.modals import ConfirmModal
from ui_support import connect, until

SIZE = (160, 45)
TABLE = "livetest"


@pytest.fixture(autouse=True)
def private_config(tmp_path, monkeypatch):
    monkeypatch.setenv("CONVEX_CONSOLE_CONFIG_DIR", str(tmp_path / "config"))
    monkeypatch.setenv("CONVEX_CONSOLE_DATA_DIR", str(tmp_path / "data"))


def page_text(screen) -> str:
    return str(screen.query_one("#page-bar").render())


async def seeded(emulator, count: int = 3) -> None:
    async with DeploymentClient(connect(emulator)) as client:
        for number in range(count):  # one by one: distinct creation times
            await client.add_documents(TABLE, [{"name": f"c{number}", "value": float(number)}])


async def open_live(pilot, app, *, state: str = "live"):
    await until(pilot, lambda: getattr(app.screen, "tables", None) and not app.screen.page_loading)
    screen = app.screen
    screen.open_table(TABLE)
    await until(pilot, lambda: screen.table == TABLE and not screen.page_loading
                and screen.live_state == state)
    return screen, screen.query_one(DocumentGrid)


def row_keys(grid: DocumentGrid) -> dict:
    return {key.value: key for key in grid.rows}


async def test_insert_patch_delete_update_rows_in_place(emulator):
    await seeded(emulator)
    app = ConsoleApp(connect(emulator), "test", None)
    async with app.run_test(size=SIZE) as pilot, DeploymentClient(connect(emulator)) as other:
        screen, grid = await open_live(pilot, app)
        await pilot.press("o")  # newest first: an insert lands on top, above the others
        await until(pilot, lambda: screen.spec.order == "desc" and not screen.page_loading
                    and screen.live_state == "live")
        assert "live" in str(screen.query_one("StatusBar").render())
        before_keys, rebuilds = row_keys(grid), grid.rebuilds
        assert page_text(screen).startswith("Showing 1–3 of 3")

        await other.add_documents(TABLE, [{"name": "new", "value": 99.0, "extra": "field"}])
        await until(pilot, lambda: grid.row_count == 4)
        new_id = next(doc_id for doc_id in grid.docs if doc_id not in before_keys)
        assert list(grid.docs)[0] == new_id and grid.get_row_index(new_id) == 0  # sorted in, on top
        assert "extra" in grid.fields  # a new field became a column
        await until(pilot, lambda: page_text(screen).startswith("Showing 1–4 of 4"))

        victim = list(before_keys)[0]
        await other.patch_fields(TABLE, [victim], {"value": 7.5})
        await until(pilot, lambda: grid.docs[victim]["value"] == 7.5)
        assert "7.5" in str(grid.get_cell(victim, "value"))

        await other.delete_documents([(list(before_keys)[1], TABLE)])
        await until(pilot, lambda: grid.row_count == 3 and list(before_keys)[1] not in grid.docs)
        await until(pilot, lambda: page_text(screen).startswith("Showing 1–3 of 3"))

        assert grid.rebuilds == rebuilds  # every change was applied in place
        for doc_id in (victim, list(before_keys)[2]):  # untouched rows kept their keys (and their place)
            assert row_keys(grid)[doc_id] is before_keys[doc_id]


async def test_marker_when_the_row_under_the_cursor_changes(emulator):
    await seeded(emulator)
    app = ConsoleApp(connect(emulator), "test", None)
    async with app.run_test(size=SIZE) as pilot, DeploymentClient(connect(emulator)) as other:
        screen, grid = await open_live(pilot, app)
        grid.focus()
        grid.move_cursor(row=1)
        await until(pilot, lambda: screen.query_one("#detail").doc is not None
                    and screen.query_one("#detail").doc["_id"] == grid.current_id)
        under = grid.current_id
        other_id = list(grid.docs)[0]
        await other.patch_fields(TABLE, [other_id], {"value": 1000.0})  # elsewhere: no marker
        await until(pilot, lambda: grid.docs[other_id]["value"] == 1000.0)
        assert "under the cursor" not in page_text(screen)

        await other.patch_fields(TABLE, [under], {"name": "renamed"})
        await until(pilot, lambda: "changed under the cursor" in page_text(screen))
        assert grid.current_id == under
        assert screen.query_one("#detail").doc["name"] == "renamed"  # the detail pane follows
        await pilot.press("down")
        await until(pilot, lambda: "under the cursor" not in page_text(screen))

        await pilot.press("up")
        await until(pilot, lambda: grid.current_id == under)
        await other.delete_documents([(under, TABLE)])
        await until(pilot, lambda: "deleted under the cursor" in page_text(screen))
        assert under not in grid.docs and grid.current_id in grid.docs


async def test_a_modal_pauses_live_updates_until_it_closes(emulator):
    await seeded(emulator)
    app = ConsoleApp(connect(emulator), "test", None)
    async with app.run_test(size=SIZE) as pilot, DeploymentClient(connect(emulator)) as other:
        screen, grid = await open_live(pilot, app)
        await pilot.press("d")  # the delete confirmation is a modal
        await until(pilot, lambda: isinstance(app.screen, ConfirmModal))
        await other.add_documents(TABLE, [{"name": "while-modal", "value": 1.0}])
        await until(pilot, lambda: screen._pending_live is not None)
        assert grid.row_count == 3  # held back while the modal is open
        await pilot.press("escape")
        await until(pilot, lambda: app.screen is screen and grid.row_count == 4)
        assert any(doc.get("name") == "while-modal" for doc in grid.docs.values())


async def test_the_count_follows_rows_added_off_the_page(emulator):
    async with DeploymentClient(connect(emulator)) as client:
        await client.add_documents(TABLE, [{"name": f"n{number}", "value": float(number)} for number in range(101)])
    app = ConsoleApp(connect(emulator), "test", None)
    async with app.run_test(size=SIZE) as pilot, DeploymentClient(connect(emulator)) as other:
        screen, grid = await open_live(pilot, app)
        await until(pilot, lambda: page_text(screen).startswith("Showing 1–100 of 101"))
        first_page = list(grid.docs)
        await other.add_documents(TABLE, [{"name": "last", "value": 0.0}])  # after this page (ascending)
        await until(pilot, lambda: page_text(screen).startswith("Showing 1–100 of 102"))
        assert list(grid.docs) == first_page


async def test_leaving_the_page_unsubscribes(emulator):
    await seeded(emulator)
    app = ConsoleApp(connect(emulator), "test", None)
    async with app.run_test(size=SIZE) as pilot:
        screen, _grid = await open_live(pilot, app)
        sync = app.sync_client()
        assert sync.subscription_count == 2  # the page and the table's count
        await pilot.press("o")
        await until(pilot, lambda: screen.spec.order == "desc" and not screen.page_loading
                    and screen.live_state == "live")
        assert sync.subscription_count == 2  # the old page's subscription went away
        screen.open_table("posts")
        await until(pilot, lambda: screen.table == "posts" and not screen.page_loading)
        await until(pilot, lambda: sync.subscription_count == 2)
        assert screen._live_subscription.path == "_system/frontend/paginatedTableDocuments"


async def test_polling_when_the_deployment_refuses_the_socket(emulator):
    await seeded(emulator)
    app = ConsoleApp(connect(emulator), "test", None)
    app.sync_url = emulator.site_url  # a real server that answers the upgrade with an HTTP error
    async with app.run_test(size=SIZE) as pilot, DeploymentClient(connect(emulator)) as other:
        screen, grid = await open_live(pilot, app, state="polling")
        assert POLLING_NOTE in page_text(screen)
        assert "polling" in str(screen.query_one("StatusBar").render())
        rebuilds = grid.rebuilds
        await other.add_documents(TABLE, [{"name": "polled", "value": 5.0}])
        await until(pilot, lambda: grid.row_count == 4)
        victim = list(grid.docs)[0]
        await other.patch_fields(TABLE, [victim], {"value": -1.0})
        await until(pilot, lambda: grid.docs[victim]["value"] == -1.0)
        assert grid.rebuilds == rebuilds
        await until(pilot, lambda: page_text(screen).startswith("Showing 1–4 of 4"))


async def test_grid_diffs_match_a_fresh_page_for_random_edits():
    """Property (seeded random pages): applying diff_rows to the grid always leaves exactly the
    new page, in order, with its values, and never rebuilds."""
    import random

    from textual.app import App

    from console.sync import diff_rows

    class GridApp(App):
        def compose(self):
            yield DocumentGrid()

    rng = random.Random(5)
    app = GridApp()
    async with app.run_test(size=SIZE) as pilot:
        grid = app.query_one(DocumentGrid)
        next_id = 0

        def new_doc() -> dict:
            nonlocal next_id
            next_id += 1
            return {"_id": f"id{next_id:04d}", "_creationTime": float(next_id), "n": float(rng.randint(0, 9))}

        page = [new_doc() for _ in range(8)]
        grid.show_page(page)
        rebuilds = grid.rebuilds
        for _step in range(60):
            after = [dict(doc) for doc in page]
            for _edit in range(rng.randint(1, 4)):
                kind = rng.choice(["insert", "delete", "patch", "move", "field"])
                if kind == "insert":
                    after.insert(rng.randint(0, len(after)), new_doc())
                elif kind == "delete" and after:
                    after.pop(rng.randrange(len(after)))
                elif kind == "patch" and after:
                    after[rng.randrange(len(after))]["n"] = float(rng.randint(10, 99))
                elif kind == "move" and len(after) > 1:
                    after.insert(rng.randint(0, len(after) - 1), after.pop(rng.randrange(len(after))))
                elif kind == "field" and after:
                    after[rng.randrange(len(after))][f"f{rng.randint(0, 3)}"] = "x"
            if after:
                grid.move_cursor(row=rng.randrange(len(page)) if page else 0)
            cursor_id = grid.current_id
            grid.apply_diff(diff_rows(page, after), after)
            await pilot.pause()
            shown = [grid.coordinate_to_cell_key((row, 0)).row_key.value for row in range(grid.row_count)]
            assert shown == [doc["_id"] for doc in after]
            for doc in after:
                assert str(grid.get_cell(doc["_id"], "n")) == str(doc["n"]).removesuffix(".0")
                for name in doc:
                    assert name in grid.fields
            if cursor_id in grid.docs:
                assert grid.current_id == cursor_id  # the cursor stays on its document
            page = after
        assert grid.rebuilds == rebuilds
