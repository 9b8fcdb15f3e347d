"""The Files screen: stored files (paged, newest first, by date range or id), uploads with
byte-level progress, downloads, copy URL, delete with confirmation.

Uploads and downloads stream through `DeploymentClient.upload_path` / `download_to_path`
(console/transfers.py): each gets a row with a progress bar (bytes, percent, throughput,
ETA); `x` cancels them. An upload can be recorded in an app table by a chosen mutation
(the seed's `files:saveFile` step). Workers only call the client and post messages.
"""

from __future__ import annotations

import datetime as dt
import os
import shlex
import time
from dataclasses import dataclass
from pathlib import Path

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.message import Message
from textual.suggester import Suggester
from textual.widgets import DataTable, Input, Label, ProgressBar, Static
from textual.worker import Worker, WorkerState

from console.client import ClientError, FunctionError, Page, Unreachable
from console.transfers import (
    LocalFileError, TransferProgress, check_source, describe_progress, human_size,
)
from screens.base import ConsoleScreen
from screens.widgets.modals import ConfirmModal

PAGE_SIZE = 100
PROGRESS_INTERVAL = 0.1  # seconds between progress repaints of one transfer
DEFAULT_RECORD_MUTATION = "files:saveFile"
COLUMNS = (("mark", " "), ("id", "ID"), ("size", "Size"), ("type", "Content type"),
           ("sha256", "SHA-256"), ("created", "Created"))


# -- pure helpers --------------------------------------------------------------------------


def format_created(ms: float | None) -> str:
    if ms is None:
        return ""
    return dt.datetime.fromtimestamp(ms / 1000).strftime("%Y-%m-%d %H:%M:%S")


def parse_date_range(text: str) -> tuple[float | None, float | None]:
    """`2026-01-01..2026-01-31` (either side optional; dates or ISO date-times, local time) ->
    (min, max) creation times in ms. A date as the upper bound includes that whole day."""
    text = text.strip()
    if not text:
        return None, None
    if ".." not in text:
        raise ValueError("Give a range like 2026-01-01..2026-01-31 (either side may be empty)")
    low_text, high_text = (part.strip() for part in text.split("..", 1))
    low = _parse_instant(low_text, end_of_day=False) if low_text else None
    high = _parse_instant(high_text, end_of_day=True) if high_text else None
    if low is not None and high is not None and low > high:
        raise ValueError("The start of the range is after its end")
    return low, high


def _parse_instant(text: str, *, end_of_day: bool) -> float:
    try:
        moment = dt.datetime.fromisoformat(text)
    except ValueError:
        raise ValueError(f"Not a date or date-time: {text!r} (use YYYY-MM-DD or YYYY-MM-DDTHH:MM)") from None
    if end_of_day and len(text) <= 10:
        moment += dt.timedelta(days=1) - dt.timedelta(milliseconds=1)
    return moment.timestamp() * 1000


def split_paths(text: str) -> list[str]:
    """Several paths separated by spaces; quote a path that contains spaces."""
    try:
        return shlex.split(text)
    except ValueError as error:
        raise ValueError(f"Cannot read the paths: {error}") from None


HAND_BUILT_URL_HINT = (
    "This URL puts the storage id in the path: Convex download URLs carry the file's UUID, so "
    "a hand-built URL fails. Get URLs from ctx.storage.getUrl() (the seed's \"Storage URL Returns "
    "Null\"). Showing the file with that id."
)


def lookup_target(text: str, loaded: dict[str, dict]) -> tuple[str, str | None]:
    """What the lookup prompt means: a storage id, or a download URL (-> its file, with a hint
    when the URL was built by hand with the id instead of the UUID)."""
    text = text.strip()
    if not text:
        raise ValueError("Type a storage id (or paste a download URL)")
    if "/" not in text:
        return text, None
    last = text.split("?", 1)[0].rstrip("/").rsplit("/", 1)[-1]
    for storage_id, file in loaded.items():
        if str(file.get("url", "")).split("?", 1)[0].endswith("/" + last):
            return storage_id, None
    if "-" in last:  # a UUID the admin API cannot search by
        raise ValueError("No file on this page has that download URL; paste its storage id instead")
    return last, HAND_BUILT_URL_HINT


class PathSuggester(Suggester):
    """Completes the last path typed with the files of its directory (accept with →)."""

    def __init__(self) -> None:
        super().__init__(use_cache=False, case_sensitive=True)

    async def get_suggestion(self, value: str) -> str | None:
        head, _, last = value.rpartition(" ")
        if not last or last.startswith(("'", '"')):
            return None
        expanded = os.path.expanduser(last)
        directory, prefix = os.path.split(expanded)
        try:
            names = sorted(n for n in os.listdir(directory or ".") if n.startswith(prefix) and not
                           (n.startswith(".") and not prefix.startswith(".")))
        except OSError:
            return None
        if not names:
            return None
        completed = os.path.join(directory, names[0]) if directory else names[0]
        if os.path.isdir(completed):
            completed += os.sep
        if last.startswith("~"):
            completed = "~" + completed[len(os.path.expanduser("~")):]
        return f"{head} {completed}" if head else completed


# -- messages --------------------------------------------------------------------------------


@dataclass
class FilesLoaded(Message):
    page: Page
    total: int | None
    request: tuple


@dataclass
class FileFound(Message):
    storage_id: str
    file: dict | None


@dataclass
class TransferUpdate(Message):
    key: str
    progress: TransferProgress


@dataclass
class TransferDone(Message):
    key: str
    ok: bool
    text: str


@dataclass
class _Deleted(Message):
    ids: list[str]


class _Reload(Message):
    pass


class TransferRow(Vertical):
    """One upload or download: name, progress bar, and the bytes / % / speed / ETA line."""

    DEFAULT_CSS = """
    TransferRow { height: 3; padding: 0 1; }
    TransferRow Horizontal { height: 1; }
    TransferRow .transfer-name { width: 1fr; }
    TransferRow ProgressBar { width: 48; }
    TransferRow .transfer-status { height: 1; color: $text-muted; }
    TransferRow.failed .transfer-status { color: $error; }
    TransferRow.finished .transfer-status { color: $success; }
    """

    def __init__(self, key: str, label: str, total: int | None) -> None:
        super().__init__(id=key)
        self.key = key
        self.label = label
        self.total = total
        self.state = "running"
        self.last_paint = 0.0
        self.progress: TransferProgress | None = None

    def compose(self) -> ComposeResult:
        with Horizontal():
            yield Label(self.label, classes="transfer-name", markup=False)
            yield ProgressBar(total=self.total or None, show_eta=False, id=f"{self.key}-bar")
        yield Static("waiting…", classes="transfer-status", markup=False)

    def update_progress(self, progress: TransferProgress, *, force: bool = False) -> None:
        self.progress = progress
        now = time.monotonic()
        if not force and now - self.last_paint < PROGRESS_INTERVAL:
            return
        self.last_paint = now
        bar = self.query_one(ProgressBar)
        if progress.total is not None:
            bar.update(total=max(progress.total, 1), progress=progress.done if progress.total else 1)
        self.query_one(".transfer-status", Static).update(describe_progress(progress))

    def finish(self, ok: bool, text: str) -> None:
        self.state = "finished" if ok else "failed"
        self.add_class(self.state)
        if ok and self.progress is not None:
            self.update_progress(self.progress, force=True)
        self.query_one(".transfer-status", Static).update(text)

    @property
    def status_text(self) -> str:
        return str(self.query_one(".transfer-status", Static).render())


# -- the screen ------------------------------------------------------------------------------


class FilesScreen(ConsoleScreen):
    BINDINGS = [
        Binding("u", "upload", "Upload", id="files.upload"),
        Binding("s", "download", "Download", id="files.download"),
        Binding("x", "cancel_transfers", "Cancel transfers", id="files.cancel"),
        Binding("X", "clear_transfers", "Clear finished", show=False, id="files.clear-transfers"),
        Binding("d,delete", "delete", "Delete", id="files.delete"),
        Binding("space", "mark", "Mark", show=False, id="files.mark"),
        Binding("c", "copy_url", "Copy URL", id="files.copy-url"),
        Binding("y", "copy_id", "Copy ID", show=False, id="files.copy-id"),
        Binding("slash", "lookup", "Find id", id="files.lookup"),
        Binding("f", "filter_dates", "Dates", id="files.filter-dates"),
        Binding("m", "record_with", "Record with", show=False, id="files.record-with"),
        Binding("n", "next_page", "Next", id="files.next-page"),
        Binding("p", "previous_page", "Prev", id="files.previous-page"),
        Binding("g", "first_page", "First", show=False, id="files.first-page"),
        Binding("o", "toggle_order", "Asc/Desc", show=False, id="files.toggle-order"),
        Binding("r", "refresh", "Refresh", id="files.refresh"),
        Binding("escape", "escape", "Back", show=False, id="files.escape"),
    ]

    PROMPTS = {
        "upload": ("Upload: paths separated by spaces (→ completes, quote paths with spaces)", "./photo.png ./notes.txt"),
        "download": ("Download to:", "./file.bin"),
        "lookup": ("Find a file by its storage id:", "kg2…"),
        "filter": ("Created between (local time, either side optional):", "2026-01-01..2026-01-31"),
        "record": ("After each upload, record it with this mutation (empty: don't):", DEFAULT_RECORD_MUTATION),
    }

    def __init__(self) -> None:
        super().__init__()
        self.files: dict[str, dict] = {}
        self.marked: set[str] = set()
        self.cursors: list[str | None] = [None]
        self.page_index = 0
        self.next_cursor: str | None = None
        self.is_done = True
        self.order = "desc"
        self.min_time: float | None = None
        self.max_time: float | None = None
        self.lookup_id: str | None = None
        self.total: int | None = None
        self.loading = False
        self.load_error = ""  # why the last load failed ("" once a page arrives)
        self.prompt_mode: str | None = None
        self.record_mutation: str | None = None
        self.transfers: dict[str, Worker] = {}
        self._transfer_count = 0
        self._download_id: str | None = None

    # -- layout ----------------------------------------------------------------------------
    def compose_body(self) -> ComposeResult:
        yield Static("", id="files-bar")
        table = DataTable(id="files", cursor_type="row", zebra_stripes=True)
        yield table
        with Vertical(id="files-prompt"):
            yield Label("", id="files-prompt-label")
            yield Input(id="files-prompt-input", suggester=PathSuggester())
        yield VerticalScroll(id="transfers")

    def on_mount(self) -> None:
        table = self.query_one("#files", DataTable)
        for key, label in COLUMNS:
            table.add_column(label, key=key)
        self.query_one("#files-prompt").display = False
        self.query_one("#transfers").display = False
        self.watch(self.app, "connection_state", self._connection_changed, init=False)
        self.load()

    def _connection_changed(self, state: str) -> None:
        if state == "connected" and self.load_error:
            self.load()  # the deployment answers again (r retried, or another screen reconnected)

    @property
    def client(self):
        return self.app.client

    # -- loading ---------------------------------------------------------------------------
    def load(self) -> None:
        self.loading = True
        self._update_bar()
        self._load_page((self.cursors[self.page_index], self.order, self.min_time, self.max_time, self.lookup_id))

    @work(exclusive=True, exit_on_error=False, group="files-load")
    async def _load_page(self, request: tuple) -> None:
        cursor, order, low, high, lookup = request
        if lookup is not None:
            found = await self.client.get_file(lookup)
            page = Page(items=[found] if found else [], is_done=True, continue_cursor=None)
            self.post_message(FilesLoaded(page, await self.client.num_files(), request))
            return
        page = await self.client.file_metadata(cursor=cursor, num_items=PAGE_SIZE, order=order,
                                               min_creation_time=low, max_creation_time=high)
        self.post_message(FilesLoaded(page, await self.client.num_files(), request))

    @on(FilesLoaded)
    def _files_loaded(self, message: FilesLoaded) -> None:
        self.loading = False
        self.load_error = ""
        self.total = message.total
        self.next_cursor = message.page.continue_cursor
        self.is_done = message.page.is_done
        table = self.query_one("#files", DataTable)
        selected = self.selected_id
        table.clear()
        self.files = {}
        for file in message.page.items:
            self.files[file["_id"]] = file
            table.add_row(*self._cells(file), key=file["_id"])
        self.marked &= set(self.files)
        if selected in self.files:
            table.move_cursor(row=list(self.files).index(selected))
        self._update_bar()

    def _cells(self, file: dict) -> tuple:
        sha = str(file.get("sha256") or "")
        return (
            "●" if file["_id"] in self.marked else " ",
            file["_id"],
            Text(human_size(file.get("size")), justify="right"),
            file.get("contentType") or Text("—", style="dim"),
            Text(sha[:16] + "…" if len(sha) > 16 else sha, style="dim"),
            format_created(file.get("_creationTime")),
        )

    def worker_failed(self, worker: Worker) -> None:
        if worker.group == "files-load":
            self.loading = False
            error = worker.error
            self.load_error = (f"deployment unreachable: {error.reason}" if isinstance(error, Unreachable)
                               else str(error) or type(error).__name__)
            self._update_bar()

    def _update_bar(self) -> None:
        parts = []
        if self.load_error and not self.loading:
            parts.append(f"Files: cannot load — {self.load_error} · r retries")
        elif self.lookup_id is not None:
            parts.append(f"File {self.lookup_id}" + ("" if self.files else " — not found"))
        else:
            start = self.page_index * PAGE_SIZE
            shown = len(self.files)
            total = f"{self.total:,}" if self.total is not None else "?"
            filtered = self.min_time is not None or self.max_time is not None
            if self.total == 0 and not shown and not filtered:
                parts.append("No files yet — u to upload")
            elif self.total is None and not shown:
                parts.append("Files" if self.loading else "Files: not loaded · r retries")
            elif not shown:
                parts.append(f"Files: none {'in these dates' if filtered else 'on this page'} (of {total})")
            else:
                parts.append(f"Files: showing {start + 1}–{start + shown} of {total}")
            parts.append("newest first" if self.order == "desc" else "oldest first")
            if self.min_time is not None or self.max_time is not None:
                parts.append(f"created {format_created(self.min_time) or '…'} .. {format_created(self.max_time) or '…'}")
        if self.marked:
            parts.append(f"{len(self.marked)} marked")
        if self.record_mutation:
            parts.append(f"uploads recorded with {self.record_mutation}")
        if self.loading:
            parts.append("loading…")
        self.query_one("#files-bar", Static).update(" · ".join(parts))

    @property
    def selected_id(self) -> str | None:
        table = self.query_one("#files", DataTable)
        if not self.files or table.cursor_row is None or table.cursor_row >= len(self.files):
            return None
        return list(self.files)[table.cursor_row]

    # -- paging, order, filters --------------------------------------------------------------
    def action_next_page(self) -> None:
        if self.is_done or self.lookup_id is not None or not self.next_cursor:
            return
        del self.cursors[self.page_index + 1:]
        self.cursors.append(self.next_cursor)
        self.page_index += 1
        self.load()

    def action_previous_page(self) -> None:
        if self.page_index > 0:
            self.page_index -= 1
            self.load()

    def action_first_page(self) -> None:
        self.page_index = 0
        self.load()

    def _restart(self) -> None:
        self.cursors, self.page_index = [None], 0
        self.load()

    def action_toggle_order(self) -> None:
        self.order = "asc" if self.order == "desc" else "desc"
        self._restart()

    def action_refresh(self) -> None:
        if self.app.connection_state in ("unreachable", "refused"):
            self.app.retry_connection()  # the files load again once it answers
        self.load()

    def action_escape(self) -> None:
        if self.prompt_mode is not None:
            self._close_prompt()
        elif self.lookup_id is not None or self.min_time is not None or self.max_time is not None:
            self.lookup_id = self.min_time = self.max_time = None
            self._restart()

    def action_filter_dates(self) -> None:
        self._open_prompt("filter")

    def action_lookup(self) -> None:
        self._open_prompt("lookup")

    def action_record_with(self) -> None:
        self._open_prompt("record", self.record_mutation or DEFAULT_RECORD_MUTATION)

    # -- the prompt ----------------------------------------------------------------------------
    def _open_prompt(self, mode: str, value: str = "") -> None:
        label, placeholder = self.PROMPTS[mode]
        self.prompt_mode = mode
        self.query_one("#files-prompt").display = True
        self.query_one("#files-prompt-label", Label).update(label)
        field = self.query_one("#files-prompt-input", Input)
        field.placeholder = placeholder
        field.value = value
        field.cursor_position = len(value)
        field.focus()

    def _close_prompt(self) -> None:
        self.prompt_mode = None
        self.query_one("#files-prompt").display = False
        self.query_one("#files", DataTable).focus()

    def check_action(self, action: str, parameters: tuple) -> bool | None:
        # While the prompt is open, typed letters go to it, not to the bindings.
        if self.prompt_mode is not None and action not in ("escape",):
            return False
        return True

    @on(Input.Submitted, "#files-prompt-input")
    def _prompt_submitted(self, event: Input.Submitted) -> None:
        mode, text = self.prompt_mode, event.value
        try:
            self.submit_prompt(mode, text)
        except (ValueError, LocalFileError) as error:
            self.notify(str(error), title="Invalid input", severity="error", timeout=6)
            return
        self._close_prompt()

    def submit_prompt(self, mode: str | None, text: str) -> None:
        if mode == "upload":
            self.start_uploads(split_paths(text))
        elif mode == "download":
            if self._download_id is None:
                raise ValueError("Select a file to download first")
            self.start_download(self._download_id, text)
        elif mode == "lookup":
            storage_id, hint = lookup_target(text, self.files)
            if hint:
                self.notify(hint, title="About that URL", timeout=10)
            self.lookup_id = storage_id
            self._restart()
        elif mode == "filter":
            self.min_time, self.max_time = parse_date_range(text)
            self.lookup_id = None
            self._restart()
        elif mode == "record":
            self.record_mutation = text.strip() or None
            self._update_bar()

    # -- uploads ---------------------------------------------------------------------------------
    def action_upload(self) -> None:
        self._open_prompt("upload")

    def _new_key(self) -> str:
        self._transfer_count += 1
        return f"transfer-{self._transfer_count}"

    def _add_row(self, label: str, total: int | None) -> str:
        key = self._new_key()
        area = self.query_one("#transfers", VerticalScroll)
        area.display = True
        area.mount(TransferRow(key, label, total))
        return key

    def start_uploads(self, paths: list[str]) -> list[str]:
        """Check every path first (a bad one refuses the batch), then start one worker each."""
        if not paths:
            raise ValueError("No file given: type the path of a file to upload")
        checked = [check_source(path) for path in paths]
        keys = []
        for source, size in checked:
            key = self._add_row(f"↑ {source.name}", size)
            self.transfers[key] = self.run_worker(
                self._upload(key, source), group="files-transfer", exclusive=False, exit_on_error=False,
                name=key,
            )
            keys.append(key)
        return keys

    def _progress_poster(self, key: str):
        def post(progress: TransferProgress) -> None:
            self.post_message(TransferUpdate(key, progress))
        return post

    async def _upload(self, key: str, source: Path) -> None:
        try:
            result = await self.client.upload_path(source, on_progress=self._progress_poster(key))
        except (LocalFileError, ClientError) as error:
            self.post_message(TransferDone(key, False, f"✖ {error}"))
            if isinstance(error, Unreachable):
                raise
            return
        text = f"✔ {human_size(result.size)} stored as {result.storage_id}"
        text += " · sha256 verified" if result.verified else " · sha256 not verified (no admin key)"
        if self.record_mutation:
            text += await self._record(result, source)
        self.post_message(TransferDone(key, True, text))
        self.post_message(_Reload())

    async def _record(self, result, source: Path) -> str:
        args = {"storageId": result.storage_id, "filename": source.name,
                "contentType": result.content_type or "application/octet-stream"}
        try:
            record_id = await self.client.mutation(self.record_mutation, args)
        except FunctionError as error:
            return f" · {self.record_mutation} failed: {error.summary}"
        return f" · recorded by {self.record_mutation} ({record_id})"

    @on(TransferUpdate)
    def _transfer_update(self, message: TransferUpdate) -> None:
        row = self._row(message.key)
        if row is not None and row.state == "running":
            done = message.progress.total is not None and message.progress.done >= message.progress.total
            row.update_progress(message.progress, force=done)

    @on(TransferDone)
    def _transfer_done(self, message: TransferDone) -> None:
        row = self._row(message.key)
        if row is not None:
            row.finish(message.ok, message.text)
        self.transfers.pop(message.key, None)

    def _row(self, key: str) -> TransferRow | None:
        found = self.query(f"#{key}")
        return found.first() if found else None

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        if event.worker.group == "files-transfer" and event.state == WorkerState.CANCELLED:
            key = event.worker.name
            row = self._row(key)
            if row is not None and row.state == "running":
                row.finish(False, "⊘ cancelled: nothing was kept")
            self.transfers.pop(key, None)
            return
        super().on_worker_state_changed(event)

    def action_cancel_transfers(self) -> None:
        running = [worker for worker in self.transfers.values() if worker.is_running]
        if not running:
            self.notify("No transfer in progress.")
            return
        for worker in running:
            worker.cancel()
        self.notify(f"Cancelled {len(running)} transfer{'s' if len(running) != 1 else ''}.")

    def action_clear_transfers(self) -> None:
        for row in list(self.query(TransferRow)):
            if row.state != "running":
                row.remove()
        if not any(row.state == "running" for row in self.query(TransferRow)):
            self.query_one("#transfers").display = False

    # -- downloads --------------------------------------------------------------------------------
    def action_download(self) -> None:
        storage_id = self.selected_id
        if storage_id is None:
            self.notify("Select a file first.")
            return
        self._download_id = storage_id
        self._open_prompt("download", f"./{storage_id}{_extension(self.files[storage_id])}")

    def start_download(self, storage_id: str, target: str) -> str:
        from console.transfers import check_target

        path = check_target(target, overwrite=False)
        file = self.files.get(storage_id)
        if file is None:
            raise ValueError(f"{storage_id} is not in the list any more")
        key = self._add_row(f"↓ {path.name}", int(file.get("size") or 0))
        self.transfers[key] = self.run_worker(
            self._download(key, file["url"], path), group="files-transfer", exclusive=False,
            exit_on_error=False, name=key,
        )
        return key

    async def _download(self, key: str, url: str, path: Path) -> None:
        try:
            result = await self.client.download_to_path(url, path, on_progress=self._progress_poster(key))
        except (LocalFileError, ClientError) as error:
            self.post_message(TransferDone(key, False, f"✖ {error}"))
            if isinstance(error, Unreachable):
                raise
            return
        check = "sha256 verified" if result.verified else "no Digest to verify"
        self.post_message(TransferDone(key, True, f"✔ saved {human_size(result.size)} to {result.path} · {check}"))

    # -- marks, copy, delete ------------------------------------------------------------------------
    def action_mark(self) -> None:
        storage_id = self.selected_id
        if storage_id is None:
            return
        self.marked ^= {storage_id}
        table = self.query_one("#files", DataTable)
        table.update_cell(storage_id, "mark", "●" if storage_id in self.marked else " ")
        table.move_cursor(row=min(table.cursor_row + 1, len(self.files) - 1))
        self._update_bar()

    def action_copy_url(self) -> None:
        storage_id = self.selected_id
        if storage_id is None:
            return
        self.app.copy_to_clipboard(self.files[storage_id]["url"])
        self.notify("Download URL copied to the clipboard (OSC 52).")

    def action_copy_id(self) -> None:
        storage_id = self.selected_id
        if storage_id is not None:
            self.app.copy_to_clipboard(storage_id)
            self.notify("Storage id copied to the clipboard (OSC 52).")

    def action_delete(self) -> None:
        targets = sorted(self.marked) if self.marked else ([self.selected_id] if self.selected_id else [])
        if not targets:
            self.notify("Select or mark files to delete.")
            return
        size = sum(float(self.files.get(t, {}).get("size") or 0) for t in targets)
        what = f"{len(targets)} file{'s' if len(targets) != 1 else ''} ({human_size(size)})"
        listing = "\n".join(targets[:10]) + ("\n…" if len(targets) > 10 else "")
        connection = self.app.connection
        require = "delete" if connection is not None and connection.is_production else None
        modal = ConfirmModal(f"Delete {what}?", f"{listing}\n\nTheir download URLs stop working.",
                             confirm_label="Delete", require_text=require)
        self.app.push_screen(modal, lambda confirmed: self._delete(targets) if confirmed else None)

    @work(exclusive=True, exit_on_error=False, group="files-delete")
    async def _delete(self, targets: list[str]) -> None:
        await self.client.delete_files(targets)
        self.post_message(_Deleted(targets))

    @on(_Deleted)
    def _deleted(self, message: _Deleted) -> None:
        self.marked -= set(message.ids)
        self.notify(f"Deleted {len(message.ids)} file{'s' if len(message.ids) != 1 else ''}.")
        self.load()

    @on(_Reload)
    def _reload(self, message: _Reload) -> None:
        self.load()


def _extension(file: dict) -> str:
    import mimetypes

    content_type = (file.get("contentType") or "").split(";")[0].strip()
    return (mimetypes.guess_extension(content_type) or "") if content_type else ""


def make_screen() -> FilesScreen:
    return FilesScreen()
