"""The Data screen: tables with counts, a paged document grid, filters, indexes, schema, and a
document detail pane that follows references; insert, edit and delete with confirmation.

Workers only call the client and post messages; the `on_*` handlers change widgets.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, replace
from typing import Any

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.message import Message
from textual.widgets import DataTable, Label, OptionList, Static, TabbedContent, TabPane
from textual.widgets.option_list import Option
from textual.lazy import Lazy
from textual.reactive import var
from textual.worker import Worker

from console import ids, values
from console.client import ClientError, IndexInfo, Page, Schemas, TableInfo
from screens.base import ConsoleScreen
from screens.data_live import POLLING_NOTE, CountLoaded, LivePageMixin
from screens.formatting import format_count, index_fields_text, table_source, to_jsonish
from screens.paging import PAGE_SIZE, PageRequest, Pager, flip
from screens.query import QuerySpec
from screens.widgets.document_detail import DocumentDetail
from screens.widgets.document_grid import DocumentGrid

SYSTEM_TABLE_NUMBERS = {"_file_storage": "_storage", "_scheduled_jobs": "_scheduled_functions"}


# -- messages posted by workers ------------------------------------------------------


@dataclass
class TablesLoaded(Message):
    tables: list[TableInfo]
    mapping: dict[int, str]


@dataclass
class SchemasLoaded(Message):
    schemas: Schemas | None


@dataclass
class CountsLoaded(Message):
    counts: dict[str, int | None]


@dataclass
class PageLoaded(Message):
    table: str
    request: PageRequest
    page: Page


@dataclass
class IndexesLoaded(Message):
    table: str
    indexes: list[IndexInfo]


@dataclass
class DocumentLoaded(Message):
    table: str
    doc_id: str
    doc: dict | None


@dataclass
class WriteDone(Message):
    summary: str
    table: str


class IndexesTable(DataTable):
    """The indexes pane (mounted lazily: it starts hidden)."""

    def on_mount(self) -> None:
        self.add_columns("name", "fields", "kind", "state")
        screen = self.screen
        if isinstance(screen, DataScreen) and screen.table is not None:
            screen._show_indexes()


def _prompt(info: TableInfo, flagged: bool) -> Text:
    text = Text()
    text.append(("⚠ " if flagged else "  "), style="bold yellow")
    name = info.name if len(info.name) <= 20 else info.name[:19] + "…"
    text.append(name.ljust(20), style="dim" if info.is_system else "bold")
    text.append(format_count(info.count).rjust(9), style="cyan")
    return text


class DataScreen(LivePageMixin, ConsoleScreen):
    AUTO_FOCUS = "#grid"
    BINDINGS = [
        Binding("n", "next_page", "Next", id="data.next-page"),
        Binding("p", "previous_page", "Prev", id="data.previous-page"),
        Binding("g", "first_page", "First", id="data.first-page"),
        Binding("G", "last_page", "Last", id="data.last-page"),
        Binding("o", "toggle_order", "Asc/Desc", id="data.toggle-order"),
        Binding("slash", "filter", "Filter", id="data.filter"),
        Binding("x", "clear_filters", "Clear filters", show=False, id="data.clear-filters"),
        Binding("r", "refresh", "Refresh", id="data.refresh"),
        Binding("escape", "back", "Back", show=False, id="data.back"),
        Binding("c", "copy_value", "Copy", id="data.copy-value"),
        Binding("y", "copy_id", "Copy ID", show=False, id="data.copy-id"),
        Binding("space", "mark", "Mark", show=False, id="data.mark"),
        Binding("i", "insert", "Insert", id="data.insert"),
        Binding("e", "edit_field", "Edit field", id="data.edit-field"),
        Binding("E", "edit_document", "Edit doc", show=False, id="data.edit-document"),
        Binding("d,delete", "delete", "Delete", id="data.delete"),
        Binding("t", "focus_tables", "Tables", show=False, id="data.focus-tables"),
        Binding("v", "next_pane", "Pane", show=False, id="data.next-pane"),
    ]

    # the live view's state, shown by the status bar: "" | connecting | live | reconnecting | polling | failed
    live_state: var[str] = var("")

    def __init__(self) -> None:
        super().__init__()
        self.tables: list[TableInfo] = []
        self.table_numbers: dict[int, str] = {}
        self.schemas: Schemas | None = None
        self.table: str | None = None
        self.spec = QuerySpec()
        self.pager = Pager()
        self.total: int | None = None
        self.indexes: list[IndexInfo] = []
        self.back_stack: list[tuple[str, dict]] = []
        self.page_loading = False
        self.filter_problem = ""
        self._tables_pending = False
        # schema and counts wait for the first page to be painted (they are not needed for rows)
        self._details_wanted = False
        self._tables_known = False
        self._page_shown = False
        self._shown_request: PageRequest | None = None
        self._paging_keys: tuple[bool, bool] | None = None
        self._init_live()  # the live page's fields (screens.data_live)
        self._shown_row_id: str | None = None  # the grid row the detail pane shows

    # -- layout ------------------------------------------------------------------------

    def compose_body(self) -> ComposeResult:
        with Horizontal(id="data-body"):
            with Vertical(id="tables-pane"):
                yield Label("Tables", classes="pane-title")
                yield OptionList(id="tables")
            with Vertical(id="grid-pane"):
                yield Static("", id="query-bar")
                yield DocumentGrid(id="grid")
                yield Static("", id="page-bar")
            with TabbedContent(id="side-pane", initial="tab-document"):
                with TabPane("Document", id="tab-document"):
                    yield DocumentDetail(id="detail")
                with TabPane("Indexes", id="tab-indexes"):
                    yield Lazy(IndexesTable(id="indexes", cursor_type="row", zebra_stripes=True))
                with TabPane("Schema", id="tab-schema"):
                    yield Lazy(VerticalScroll(Static("", id="schema", markup=False)))

    def on_mount(self) -> None:
        self.query_one(DocumentDetail).table_of_id = self.table_of_id
        self.watch(self.app, "connection_state", self._connection_changed, init=False)
        self.query_one("#grid", DocumentGrid).focus()
        if self.app.connection_state in ("connecting", "connected"):
            self.request_tables()  # in parallel with the app's connection check: rows paint sooner
            last = self.app.session.last_table()
            if last:
                self.open_table(last, restore=True)  # before the table list arrives

    def _connection_changed(self, state: str) -> None:
        if state == "connected" and not self.tables:
            self.request_tables()

    def request_tables(self) -> None:
        if not self._tables_pending:
            self._tables_pending = True
            self._details_wanted = True
            self.load_tables()

    def _request_details(self) -> None:
        """Schema and counts, once the names are known and the first rows are on screen (or
        there are none to show): at start-up they would only compete with the page."""
        if self._details_wanted and self._tables_known and (self._page_shown or self.table is None):
            self._details_wanted = False
            self.load_table_details()

    @property
    def client(self):
        return self.app.client

    # -- workers ----------------------------------------------------------------------

    @work(exclusive=True, exit_on_error=False, group="tables")
    async def load_tables(self) -> None:
        """The names (one request): the grid can start loading."""
        tables = await self.client.tables(counts=False)
        mapping = {info.number: info.name for info in tables if info.number is not None}
        self.post_message(TablesLoaded(tables, mapping))

    @work(exclusive=True, exit_on_error=False, group="table-details")
    async def load_table_details(self) -> None:
        """The schema and the counts, side by side."""

        async def schemas() -> Schemas | None:
            try:
                return await self.client.schemas()
            except ClientError:  # the schema is optional for browsing; the pane says it is unknown
                return None

        found, counted = await asyncio.gather(schemas(), self.client.tables(counts=True))
        self.post_message(SchemasLoaded(found))
        self.post_message(CountsLoaded({info.name: info.count for info in counted}))

    def worker_succeeded(self, worker: Worker) -> None:
        if worker.group == "tables":
            self._tables_pending = False

    @work(exclusive=True, exit_on_error=False, group="page")
    async def load_page(self, table: str, spec: QuerySpec, request: PageRequest) -> None:
        if table.startswith("_") and not spec.clauses and not spec.index:
            page = await self.client.cli_table_data(table, order=request.order, cursor=request.cursor,
                                                    num_items=PAGE_SIZE)
        else:
            page = await self.client.table_page(table, filters=spec.clauses, index=spec.index_filter(),
                                                order=request.order, cursor=request.cursor, num_items=PAGE_SIZE)
        self.post_message(PageLoaded(table, request, page))

    @work(exclusive=True, exit_on_error=False, group="count")
    async def load_count(self, table: str) -> None:
        if table == "_storage":
            count = await self.client.num_files()
        else:
            count = await self.client.table_size(table)
        self.post_message(CountLoaded(table, count))

    @work(exclusive=True, exit_on_error=False, group="indexes")
    async def load_indexes(self, table: str) -> None:
        indexes = [] if table.startswith("_") else await self.client.indexes(table)
        self.post_message(IndexesLoaded(table, indexes))

    @work(exclusive=True, exit_on_error=False, group="detail")
    async def load_document(self, table: str, doc_id: str) -> None:
        doc = await self.client.get_document(table, doc_id)
        self.post_message(DocumentLoaded(table, doc_id, doc))

    @work(exclusive=False, exit_on_error=False, group="write")
    async def write(self, summary: str, table: str, operation: str, *args: Any) -> None:
        await getattr(self.client, operation)(*args)
        self.post_message(WriteDone(summary, table))

    def worker_failed(self, worker: Worker) -> None:
        if worker.group == "tables":
            self._tables_pending = False
        if worker.group == "page":
            self.page_loading = False
            self._page_shown = True  # no rows to wait for: the details may come
            self._request_details()
            self._update_bars()

    # -- message handlers -------------------------------------------------------------

    def on_tables_loaded(self, message: TablesLoaded) -> None:
        known = {info.name: info.count for info in self.tables}
        self.tables = message.tables
        for info in self.tables:
            info.count = known.get(info.name, info.count)
        self.table_numbers = {number: SYSTEM_TABLE_NUMBERS.get(name, name) for number, name in message.mapping.items()}
        self.app.table_names = [info.name for info in self.tables]
        self._tables_known = True
        if self.table is None or self.table not in self.app.table_names:
            last = self.app.session.last_table()
            names = self.app.table_names
            start = last if last in names else (names[0] if names else None)
            if start is not None:
                self.open_table(start, restore=True)
        self._fill_table_list()
        self._request_details()
        answered = getattr(self.app, "deployment_answered", None)
        if answered is not None:  # an admin query succeeded: the status bar need not wait
            answered()

    def on_schemas_loaded(self, message: SchemasLoaded) -> None:
        self.schemas = message.schemas
        self._fill_table_list()
        self._show_schema()

    def on_counts_loaded(self, message: CountsLoaded) -> None:
        for info in self.tables:
            if info.name in message.counts:
                info.count = message.counts[info.name]
        if self.table in message.counts:
            self.total = message.counts[self.table]
            self._update_bars()
        self._fill_table_list()
        self._show_schema()

    def _fill_table_list(self) -> None:
        options = self.query_one("#tables", OptionList)
        highlighted = options.highlighted
        options.clear_options()
        for info in self.tables:
            options.add_option(Option(_prompt(info, self._missing_from_schema(info)), id=info.name))
        if self.table in self.app.table_names:
            options.highlighted = self.app.table_names.index(self.table)
        elif highlighted is not None and options.option_count:
            options.highlighted = min(highlighted, options.option_count - 1)

    def _missing_from_schema(self, info: TableInfo) -> bool:
        active = self.schemas.active if self.schemas else None
        return bool(active) and not info.is_system and bool(info.count) and self.schemas.table(info.name) is None

    def on_page_loaded(self, message: PageLoaded) -> None:
        if message.table != self.table or not self.pager.accept(
            message.request, message.page.items, message.page.continue_cursor, message.page.is_done
        ):
            return
        self.page_loading = False
        problems = message.page.filter_problems
        self.filter_problem = "; ".join(problem.error for problem in problems)
        if problems:
            self.notify(self.filter_problem, title="Filter not applied", severity="warning")
        grid = self.query_one("#grid", DocumentGrid)
        grid.show_page(self.pager.docs)
        if self.focused is None:
            grid.focus()
        self._show_highlighted()
        self._update_bars()
        # paint the rows first; the subscription, the footer and the details follow
        self._shown_request = message.request
        self.call_after_refresh(self._after_page_painted, message.request)

    def _after_page_painted(self, request: PageRequest) -> None:
        if self.page_loading or request is not self._shown_request:  # another page came or is on its way
            return
        self._page_shown = True
        self._start_live(request)
        self._request_details()
        paging_keys = (self.pager.can_go_next, self.pager.can_go_previous)
        if paging_keys != self._paging_keys:  # the footer recomposes on refresh: only on change
            self._paging_keys = paging_keys
            self.refresh_bindings()

    def on_count_loaded(self, message: CountLoaded) -> None:
        for info in self.tables:
            if info.name == message.table:
                info.count = message.count
        if message.table == self.table:
            self.total = message.count
            self._update_bars()
        self._fill_table_list()

    def on_indexes_loaded(self, message: IndexesLoaded) -> None:
        if message.table != self.table:
            return
        self.indexes = message.indexes
        self._show_indexes()

    def _show_indexes(self) -> None:
        found = self.query("#indexes")
        if not found:  # mounted lazily; it calls back when it is there
            return
        pane = found.first(DataTable)
        pane.clear()
        pane.add_row("by_creation_time", "_creationTime", "default", "done")
        pane.add_row("by_id", "_id", "default", "done")
        for index in self.indexes:
            state = index.backfill_state + (" (staged)" if index.staged else "")
            pane.add_row(index.name, index_fields_text(index.fields), index.kind, state)

    def on_document_loaded(self, message: DocumentLoaded) -> None:
        detail = self.query_one(DocumentDetail)
        if message.doc is None:
            self.notify(f"{message.doc_id} is not in {message.table} (deleted?)", severity="warning")
            return
        if detail.doc is not None and detail.table is not None:
            self.back_stack.append((detail.table, detail.doc))
        detail.show(message.table, message.doc, depth=len(self.back_stack))
        self.query_one("#detail-fields", OptionList).focus()

    def on_write_done(self, message: WriteDone) -> None:
        self.notify(message.summary, title="Done")
        self.back_stack.clear()
        if message.table == self.table:
            self.query_one("#grid", DocumentGrid).clear_marks()
            if self.live_state != "live":  # live: the subscription brings the change
                self._request(self.pager.reload())
            self.load_count(self.table)

    # -- opening a table -----------------------------------------------------------------

    @on(OptionList.OptionSelected, "#tables")
    def _table_selected(self, event: OptionList.OptionSelected) -> None:
        if event.option.id:
            self.open_table(event.option.id)
            self.query_one("#grid", DocumentGrid).focus()

    def open_table(self, table: str, *, restore: bool = False) -> None:
        self.table = table
        options = self.query_one("#tables", OptionList)
        if table in self.app.table_names:
            options.highlighted = self.app.table_names.index(table)
        self.spec = QuerySpec.from_state(self.app.session.last_query(table)) if restore else QuerySpec()
        self.total = next((info.count for info in self.tables if info.name == table), None)
        self.back_stack.clear()
        self.indexes = []
        self.query_one(DocumentDetail).show(None, None)
        self.app.session.remember_query(table, self.spec.to_state())
        self._show_schema()
        self.load_indexes(table)
        self._restart("start")

    def _restart(self, anchor: str) -> None:
        if self.table is None:
            return
        self.pager.order = self.spec.order  # type: ignore[assignment]
        self._request(self.pager.restart(anchor))  # type: ignore[arg-type]

    def _request(self, request: PageRequest | None) -> None:
        if request is None or self.table is None:
            return
        self._stop_live()  # the page, table, filters or order change: a new subscription follows
        self.page_loading = True
        self._update_bars()
        self.load_page(self.table, self.spec, request)

    def _update_bars(self) -> None:
        query_text = Text()
        query_text.append(f"{self.table or '—'}", style="bold")
        query_text.append(f"  {self.spec.describe()}", style="cyan")
        if self.filter_problem:
            query_text.append(f"  ✖ {self.filter_problem}", style="red")
        self.query_one("#query-bar", Static).update(query_text, layout=False)  # fixed size: repaint only
        status = "Loading…" if self.page_loading else self.pager.describe(self.total, self.spec.filtered)
        page_text = Text(status)
        if self._cursor_change:
            page_text.append(f"  ◆ {self._cursor_change} under the cursor ", style="bold black on yellow")
        if self.live_state == "polling":
            page_text.append(f"  ⟳ {POLLING_NOTE}", style="yellow")
        page_text.append("   n/p page · g/G first/last · / filter · o order", style="dim")
        self.query_one("#page-bar", Static).update(page_text, layout=False)

    def _show_schema(self) -> None:
        found = self.query("#schema")
        if not found:  # mounted lazily; shown when its tab is
            return
        widget = found.first(Static)
        if self.table is None:
            widget.update("")
            return
        if self.schemas is None:
            widget.update("Schema unknown (the deployment did not answer getSchemas).")
            return
        if self.table.startswith("_"):
            widget.update(f"{self.table} is a system table; its shape is fixed by Convex.")
            return
        if not self.schemas.active:
            widget.update("No schema has been pushed: documents are not validated.")
            return
        table = self.schemas.table(self.table)
        if table is None:
            count = format_count(self.total)
            widget.update(Text(f"⚠ {self.table} has {count} documents but is not in the schema.", style="bold yellow"))
            return
        validation = "" if self.schemas.active.get("schemaValidation", True) else "  // schemaValidation: false"
        widget.update(Text(f"{self.table}: {table_source(table)},{validation}"))

    # -- grid and detail -----------------------------------------------------------------

    @on(DataTable.RowHighlighted, "#grid")
    def _row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        if self._cursor_change and event.row_key.value != self._cursor_change_id:
            self._cursor_change = ""  # the user moved on: the marker has been seen
            self._update_bars()
        if event.row_key.value != self._shown_row_id:  # not a live update keeping the cursor in place
            self._show_highlighted()

    def _show_highlighted(self) -> None:
        grid = self.query_one("#grid", DocumentGrid)
        self.back_stack.clear()
        detail = self.query_one(DocumentDetail)
        doc = grid.current_doc
        self._shown_row_id = grid.current_id
        detail.show(self.table if doc else None, doc, note="No documents on this page" if not grid.docs else "")

    @on(DataTable.RowSelected, "#grid")
    def _row_selected(self, event: DataTable.RowSelected) -> None:
        self.query_one(TabbedContent).active = "tab-document"
        self.query_one("#detail-fields", OptionList).focus()

    @on(OptionList.OptionSelected, "#detail-fields")
    def _field_selected(self, event: OptionList.OptionSelected) -> None:
        self.follow_reference()

    def follow_reference(self) -> None:
        detail = self.query_one(DocumentDetail)
        target = detail.current_reference()
        if target is None:
            self.notify("This field does not hold a document id.", severity="information")
            return
        table = self.table_of_id(target)
        if table is None:
            self.notify(f"No table in this deployment holds {target}.", severity="warning")
            return
        self.load_document(table, target)

    def table_of_id(self, doc_id: str) -> str | None:
        try:
            number, _internal = ids.decode_id(doc_id)
        except ids.InvalidId:
            return None
        return self.table_numbers.get(number)

    def _focused_in(self, widget_id: str) -> bool:
        focused = self.focused
        return focused is not None and (focused.id == widget_id or any(
            ancestor.id == widget_id for ancestor in focused.ancestors if hasattr(ancestor, "id")))

    def _target_document(self) -> tuple[str | None, dict | None]:
        """The document an action applies to: the detail pane's when it has focus."""
        detail = self.query_one(DocumentDetail)
        if self._focused_in("detail") and detail.doc is not None:
            return detail.table, detail.doc
        return self.table, self.query_one("#grid", DocumentGrid).current_doc

    # -- actions ---------------------------------------------------------------------------

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "next_page":
            return True if self.pager.can_go_next else None
        if action == "previous_page":
            return True if self.pager.can_go_previous else None
        if action in ("first_page", "last_page", "toggle_order", "filter", "insert"):
            return True if self.table else None
        if action == "clear_filters":
            return True if self.spec.clauses else None
        return True

    def action_next_page(self) -> None:
        if not self.page_loading:
            self._request(self.pager.next())

    def action_previous_page(self) -> None:
        if not self.page_loading:
            self._request(self.pager.previous())

    def action_first_page(self) -> None:
        self._restart("start")

    def action_last_page(self) -> None:
        self._restart("end")

    def action_toggle_order(self) -> None:
        self._apply_spec(replace(self.spec, order=flip(self.spec.order)))  # type: ignore[arg-type]

    def _apply_spec(self, spec: QuerySpec) -> None:
        self.spec = spec
        self.filter_problem = ""
        if self.table is not None:
            self.app.session.remember_query(self.table, spec.to_state())
        self._restart("start")

    def action_filter(self) -> None:
        if self.table is None:
            return
        grid = self.query_one("#grid", DocumentGrid)
        fields = [field for field in grid.fields if field]
        indexes = {index.name: tuple(index.fields) for index in self.indexes
                   if index.kind == "database" and isinstance(index.fields, list)}
        indexes.setdefault("by_id", ("_id",))

        def done(spec: QuerySpec | None) -> None:
            if spec is not None:
                self._apply_spec(spec)

        from screens.widgets.filter_editor import FilterEditor  # editors load when first used

        self.app.push_screen(FilterEditor(self.spec, fields, indexes), done)

    def action_clear_filters(self) -> None:
        self._apply_spec(replace(self.spec, clauses=()))

    def action_refresh(self) -> None:
        if self.app.connection_state != "connected":
            self.app.retry_connection()
            return
        self.request_tables()
        if self.table is not None:
            self.load_count(self.table)
            self.load_indexes(self.table)
            self._request(self.pager.reload())

    def action_back(self) -> None:
        detail = self.query_one(DocumentDetail)
        if self.back_stack:
            table, doc = self.back_stack.pop()
            detail.show(table, doc, depth=len(self.back_stack))
        elif self._focused_in("detail"):
            self.query_one("#grid", DocumentGrid).focus()
        elif self._focused_in("grid"):
            self.query_one("#tables", OptionList).focus()

    def action_focus_tables(self) -> None:
        self.query_one("#tables", OptionList).focus()

    def action_next_pane(self) -> None:
        tabs = self.query_one(TabbedContent)
        order = ["tab-document", "tab-indexes", "tab-schema"]
        tabs.active = order[(order.index(tabs.active) + 1) % len(order)] if tabs.active in order else order[0]

    @on(TabbedContent.TabActivated)
    def _tab_shown(self, event: TabbedContent.TabActivated) -> None:
        self.call_after_refresh(self._show_schema)
        self.call_after_refresh(self._show_indexes)

    def action_copy_value(self) -> None:
        detail = self.query_one(DocumentDetail)
        table, doc = self._target_document()
        if doc is None:
            return
        field = detail.current_field if self._focused_in("detail") else None
        if field is not None and field in doc:
            value = doc[field]
            text = value if isinstance(value, str) else to_jsonish(value)
            what = field
        else:
            text, what = to_jsonish(doc), "document"
        self.app.copy_to_clipboard(text)
        self.notify(f"Copied {what} ({len(text):,} characters)")

    def action_copy_id(self) -> None:
        _table, doc = self._target_document()
        if doc is not None:
            self.app.copy_to_clipboard(str(doc.get("_id")))
            self.notify(f"Copied id {doc.get('_id')}")

    def action_mark(self) -> None:
        if self._focused_in("grid"):
            self.query_one("#grid", DocumentGrid).toggle_mark()

    def action_insert(self) -> None:
        table = self.table
        if table is None:
            return
        sample = self.query_one("#grid", DocumentGrid).current_doc or {}
        template = {key: value for key, value in sample.items() if not key.startswith("_")}

        def check(value: Any) -> None:
            documents = value if isinstance(value, list) else [value]
            for document in documents:
                values.check_document_fields(document)
                if "_id" in document or "_creationTime" in document:
                    raise ValueError("Leave out _id and _creationTime: the deployment sets them")

        def done(value: Any) -> None:
            if value is None:
                return
            documents = value if isinstance(value, list) else [value]
            self.write(f"Inserted {len(documents)} document(s) into {table}", table, "add_documents", table, documents)

        from screens.widgets.json_editor import JsonEditor

        self.app.push_screen(JsonEditor(f"Insert into {table}", to_jsonish(template),
                                        hint="A document, or a list of documents. F2 inserts, Esc cancels. "
                                             "int64 as 123n.", validate=check), done)

    def action_edit_field(self) -> None:
        table, doc = self._target_document()
        detail = self.query_one(DocumentDetail)
        field = detail.current_field if self._focused_in("detail") else None
        if doc is None or table is None:
            return
        if field is None:
            self.notify("Press enter on a row, then pick the field to edit in the detail pane.")
            return
        if field.startswith("_"):
            self.notify(f"{field} is a system field and cannot be edited.", severity="warning")
            return
        doc_id = str(doc["_id"])

        def done(value: Any) -> None:
            if value is not None:
                self.write(f"Updated {field} of {doc_id}", table, "patch_fields", table, [doc_id], {field: value})

        from screens.widgets.json_editor import JsonEditor

        self.app.push_screen(JsonEditor(f"Edit {table}.{field} of {doc_id}", to_jsonish(doc[field])), done)

    def action_edit_document(self) -> None:
        table, doc = self._target_document()
        if doc is None or table is None:
            return
        doc_id = str(doc["_id"])
        body = {key: value for key, value in doc.items() if key not in ("_id", "_creationTime")}

        def check(value: Any) -> None:
            if not isinstance(value, dict):
                raise ValueError("A document must be an object")
            values.check_document_fields({k: v for k, v in value.items() if k not in ("_id", "_creationTime")})

        def done(value: Any) -> None:
            if value is not None:
                self.write(f"Replaced {doc_id}", table, "replace_document", doc_id, value)

        from screens.widgets.json_editor import JsonEditor

        self.app.push_screen(JsonEditor(f"Edit document {doc_id} in {table}", to_jsonish(body), validate=check), done)

    def action_delete(self) -> None:
        table = self.table
        if table is None:
            return
        doc_ids = self.query_one("#grid", DocumentGrid).selected_ids()
        if not doc_ids:
            return
        connection = self.app.connection
        production = connection is not None and connection.is_production
        noun = "document" if len(doc_ids) == 1 else "documents"
        shown = ", ".join(doc_ids[:3]) + (f" and {len(doc_ids) - 3} more" if len(doc_ids) > 3 else "")
        message = f"Delete {len(doc_ids)} {noun} from {table}?\n{shown}\nThis cannot be undone."

        def done(confirmed: bool | None) -> None:
            if confirmed:
                refs = [(doc_id, table) for doc_id in doc_ids]
                self.write(f"Deleted {len(doc_ids)} {noun} from {table}", table, "delete_documents", refs)

        from screens.widgets.modals import ConfirmModal

        self.app.push_screen(ConfirmModal(f"Delete from {table}", message, confirm_label="Delete",
                                          require_text=table if production else None), done)
