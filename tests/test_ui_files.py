"""Pilot tests of the Files screen against a real emulator: upload with progress (a generated
~50 MB file), recording with a mutation, cancel, delete with confirmation, lookup, date filter,
download, bad paths, and a snapshot."""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import os
import time
from pathlib import Path

import pytest

from console.client import DeploymentClient
from console.emulator.clock import ManualClock
from screens.app import ConsoleApp
from screens.files import FilesScreen, TransferRow, TransferUpdate, parse_date_range, split_paths
from screens.widgets.modals import ConfirmModal
from screens.widgets.status_bar import StatusBar
from ui_support import connect, until

SIZE = (160, 45)
FIXED_NS = 1_767_225_600_000_000_000  # 2026-01-01 00:00:00 UTC
pytestmark = pytest.mark.timeout(90)


@pytest.fixture(autouse=True)
def isolated(ui_isolation):
    """Every test here runs isolated (tests/conftest.py)."""


async def open_files(pilot, app) -> FilesScreen:
    await pilot.press("4")
    await until(pilot, lambda: isinstance(app.screen, FilesScreen) and not app.screen.loading)
    return app.screen


def leftovers(emulator):
    service = emulator.deployment.extras["storage"]
    return sorted(p.name for p in service.tmp_dir.iterdir()), sorted(p.name for p in service.blobs_dir.iterdir())


def generate(path: Path, size: int) -> bytes:
    digest = hashlib.sha256()
    with open(path, "wb") as file:
        remaining = size
        while remaining:
            chunk = os.urandom(min(remaining, 1 << 20))
            digest.update(chunk)
            file.write(chunk)
            remaining -= len(chunk)
    return digest.digest()


async def upload_via_prompt(pilot, screen, text: str) -> None:
    await pilot.press("u")
    field = screen.query_one("#files-prompt-input")
    await until(pilot, lambda: field.has_focus)
    field.value = text
    await pilot.press("enter")


async def test_upload_with_progress_and_record(emulator_factory, tmp_path):
    emulator = emulator_factory()
    source = tmp_path / "video.mp4"
    digest = generate(source, 50 * 1024 * 1024)
    updates: list[TransferUpdate] = []
    seen: set[int] = set()
    app = ConsoleApp(connect(emulator), "test", None)

    def hook(message):
        if isinstance(message, TransferUpdate) and id(message) not in seen:  # the hook sees a message twice
            seen.add(id(message))
            updates.append(message)

    async with app.run_test(size=SIZE, message_hook=hook) as pilot:
        screen = await open_files(pilot, app)
        await pilot.press("m")
        await until(pilot, lambda: screen.prompt_mode == "record")
        assert screen.query_one("#files-prompt-input").value == "files:saveFile"
        await pilot.press("enter")
        assert screen.record_mutation == "files:saveFile"
        notes = tmp_path / "my notes.txt"
        notes.write_text("several paths at once")
        await upload_via_prompt(pilot, screen, f'{source} "{notes}"')
        await until(pilot, lambda: len(screen.query(TransferRow)) == 2
                    and all(r.state != "running" for r in screen.query(TransferRow)), 60)
        row, notes_row = list(screen.query(TransferRow))
        assert row.label == "↑ video.mp4" and notes_row.label == "↑ my notes.txt"
        assert row.state == notes_row.state == "finished", (row.status_text, notes_row.status_text)
        assert "sha256 verified" in row.status_text and "recorded by files:saveFile" in row.status_text
        video_updates = [u for u in updates if u.key == row.key]
        assert len(video_updates) >= 3  # progress arrives while it runs (throttled under load)
        dones = [u.progress.done for u in video_updates]
        assert dones == sorted(dones) and dones[-1] == 50 * 1024 * 1024
        assert any(0 < u.progress.percent < 100 and u.progress.throughput > 0 and u.progress.eta is not None
                   for u in video_updates)
        await until(pilot, lambda: len(screen.files) == 2)
        stored = {file["contentType"]: file for file in screen.files.values()}
        assert stored["video/mp4"]["size"] == 50 * 1024 * 1024 and "text/plain" in stored
        assert hashlib.sha256(source.read_bytes()).digest() == digest
    async with DeploymentClient(connect(emulator)) as client:
        recorded = await client.query("files:list", {})
        assert sorted(r["filename"] for r in recorded) == ["my notes.txt", "video.mp4"]


async def test_cancel_upload_leaves_nothing(emulator_factory, tmp_path):
    emulator = emulator_factory()
    source = tmp_path / "huge.bin"
    with open(source, "wb") as file:
        file.truncate(2 * 1024 ** 3)  # sparse
    app = ConsoleApp(connect(emulator), "test", None)
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_files(pilot, app)
        await upload_via_prompt(pilot, screen, str(source))
        await until(pilot, lambda: screen.query(TransferRow) and (screen.query_one(TransferRow).progress or
                                                                   TransferRowProgress()).done > 8 * 1024 * 1024)
        screen.query_one("#files").focus()
        await pilot.press("x")
        row = screen.query_one(TransferRow)
        await until(pilot, lambda: row.state == "failed")
        assert "cancelled" in row.status_text
        await pilot.press("X")
        await until(pilot, lambda: not screen.query(TransferRow))
        await until(pilot, lambda: leftovers(emulator) == ([], []))
        assert screen.transfers == {}
    async with DeploymentClient(connect(emulator)) as client:
        assert await client.num_files() == 0


@dataclasses.dataclass
class TransferRowProgress:
    done: int = 0


async def test_bad_paths_are_refused(emulator_factory, tmp_path):
    emulator = emulator_factory()
    app = ConsoleApp(connect(emulator), "test", None)
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_files(pilot, app)
        for text, expected in ((str(tmp_path / "missing.txt"), "No such file"), (str(tmp_path), "is a directory"),
                               ("", "No file given")):
            await upload_via_prompt(pilot, screen, text)
            await until(pilot, lambda: any(expected in str(n.message) for n in app._notifications))
            assert screen.prompt_mode == "upload"  # still open, to fix the path
            await pilot.press("escape")
        assert not screen.query(TransferRow)


async def test_delete_lookup_filter_download(emulator_factory, tmp_path):
    clock = ManualClock(FIXED_NS)
    emulator = emulator_factory(clock=clock)
    ids = []
    async with DeploymentClient(connect(emulator)) as client:
        for index in range(3):
            path = tmp_path / f"f{index}.txt"
            path.write_bytes(f"file {index}".encode())
            ids.append((await client.upload_path(path)).storage_id)
            clock.advance(24 * 3600 * 1000)  # one a day: Jan 1, 2, 3
    app = ConsoleApp(connect(emulator), "test", None)
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_files(pilot, app)
        await until(pilot, lambda: list(screen.files) == ids[::-1])
        # date range: only Jan 2
        await pilot.press("f")
        screen.query_one("#files-prompt-input").value = "2026-01-02..2026-01-02"
        await pilot.press("enter")
        await until(pilot, lambda: list(screen.files) == [ids[1]] and not screen.loading)
        await pilot.press("escape")
        await until(pilot, lambda: len(screen.files) == 3 and not screen.loading)
        # look up by id
        await pilot.press("slash")
        screen.query_one("#files-prompt-input").value = ids[0]
        await pilot.press("enter")
        await until(pilot, lambda: list(screen.files) == [ids[0]] and not screen.loading)
        await pilot.press("c")
        assert app.clipboard == screen.files[ids[0]]["url"] and "/api/storage/" in app.clipboard
        await pilot.press("y")
        assert app.clipboard == ids[0]
        # download it
        target = tmp_path / "copy.txt"
        await pilot.press("s")
        await until(pilot, lambda: screen.prompt_mode == "download")
        screen.query_one("#files-prompt-input").value = str(target)
        await pilot.press("enter")
        await until(pilot, lambda: target.exists())
        row = screen.query_one(TransferRow)
        await until(pilot, lambda: row.state == "finished")
        assert target.read_bytes() == b"file 0" and "sha256 verified" in row.status_text
        await pilot.press("escape")
        await until(pilot, lambda: len(screen.files) == 3 and not screen.loading)
        # mark two and delete them, confirming
        assert screen.selected_id == ids[0]  # the looked-up file stays selected
        screen.query_one("#files").focus()
        screen.query_one("#files").move_cursor(row=0)
        await pilot.press("space", "space")
        assert screen.marked == {ids[2], ids[1]}
        await pilot.press("d")
        await until(pilot, lambda: isinstance(app.screen, ConfirmModal))
        await pilot.click("#confirm")
        await until(pilot, lambda: list(screen.files) == [ids[0]] and not screen.loading)
        # delete the last one, but cancel first
        await pilot.press("d")
        await until(pilot, lambda: isinstance(app.screen, ConfirmModal))
        await pilot.press("escape")
        await pilot.pause(0.2)
        assert list(screen.files) == [ids[0]]
    async with DeploymentClient(connect(emulator)) as client:
        assert await client.num_files() == 1
    await asyncio.sleep(0)
    service = emulator.deployment.extras["storage"]
    deadline = time.monotonic() + 10
    while len(list(service.blobs_dir.iterdir())) != 1:
        assert time.monotonic() < deadline, "deleted blobs were not removed"
        await asyncio.sleep(0.02)


async def test_path_completion(tmp_path):
    from screens.files import PathSuggester

    (tmp_path / "photo.png").write_bytes(b"x")
    (tmp_path / "photos").mkdir()
    suggester = PathSuggester()
    assert await suggester.get_suggestion(f"{tmp_path}/photo.") == f"{tmp_path}/photo.png"
    assert await suggester.get_suggestion(f"a.txt {tmp_path}/photos") == f"a.txt {tmp_path}/photos/"
    assert await suggester.get_suggestion(f"{tmp_path}/zzz") is None


def test_lookup_target():
    from screens.files import HAND_BUILT_URL_HINT, lookup_target

    loaded = {"kg2abc": {"url": "http://127.0.0.1:3210/api/storage/0e79-21cd"}}
    assert lookup_target(" kg2abc ", loaded) == ("kg2abc", None)
    assert lookup_target("http://127.0.0.1:3210/api/storage/0e79-21cd", loaded) == ("kg2abc", None)
    assert lookup_target("https://x.convex.cloud/storage/kg2zzz", loaded) == ("kg2zzz", HAND_BUILT_URL_HINT)
    with pytest.raises(ValueError, match="storage id instead"):
        lookup_target("http://127.0.0.1:3210/api/storage/1111-2222", loaded)
    with pytest.raises(ValueError, match="Type a storage id"):
        lookup_target("  ", loaded)


def test_parsing_helpers():
    low, high = parse_date_range("2026-01-02..2026-01-02")
    assert high - low == 24 * 3600 * 1000 - 1
    assert parse_date_range("..2026-01-02")[0] is None and parse_date_range("") == (None, None)
    with pytest.raises(ValueError, match="range like"):
        parse_date_range("2026-01-01")
    with pytest.raises(ValueError, match="after its end"):
        parse_date_range("2026-02-01..2026-01-01")
    assert split_paths('a.txt "my file.png"') == ["a.txt", "my file.png"]


def test_files_screen_snapshot(snap_compare, emulator_factory, tmp_path):
    emulator = emulator_factory(clock=ManualClock(FIXED_NS))
    connection = connect(emulator)

    async def seed() -> None:
        async with DeploymentClient(connection) as client:
            for name, data in (("notes.txt", b"hello"), ("logo.png", b"\x89PNG" * 300), ("data.bin", b"\0" * 5000)):
                path = tmp_path / name
                path.write_bytes(data)
                await client.upload_path(path)
                emulator.deployment.clock.advance(60_000)

    asyncio.run(seed())
    app = ConsoleApp(connection, "built-in emulator", None)
    app.animation_level = "none"

    async def run_before(pilot) -> None:
        await pilot.press("4")
        await until(pilot, lambda: isinstance(app.screen, FilesScreen) and len(app.screen.files) == 3
                    and not app.screen.loading)
        screen = app.screen
        table = screen.query_one("#files")
        for number, storage_id in enumerate(list(screen.files), 1):
            table.update_cell(storage_id, "id", f"<id {number}>")
        app.connection = dataclasses.replace(connection, url="http://127.0.0.1:3210")
        screen.query_one(StatusBar)._refresh_text()
        await pilot.pause()

    assert snap_compare(app, terminal_size=SIZE, run_before=run_before)
