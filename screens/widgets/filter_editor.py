"""A modal to edit the data screen's query: filters (ANDed), the index to sort by, the order."""

from __future__ import annotations

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.suggester import SuggestFromList
from textual.widgets import Button, Input, Label, Select, Static

from screens.formatting import parse_filter_value, to_jsonish
from screens.query import DEFAULT_INDEX, OPERATORS, TYPE_NAMES, TYPE_OPS, FilterClause, QuerySpec


class ClauseRow(Horizontal):
    """field · operator · value; an empty field means the row is ignored."""

    DEFAULT_CSS = """
    ClauseRow { height: 3; }
    ClauseRow .clause-field { width: 24; }
    ClauseRow Select { width: 14; }
    ClauseRow .clause-value { width: 1fr; }
    ClauseRow Button { width: 5; min-width: 5; }
    """

    def __init__(self, fields: list[str], clause: FilterClause | None = None) -> None:
        super().__init__(classes="clause-row")
        self.fields = fields
        self.clause = clause

    def compose(self) -> ComposeResult:
        clause = self.clause
        yield Input(clause.field if clause else "", placeholder="field, e.g. a.b",
                    classes="clause-field", suggester=SuggestFromList(self.fields, case_sensitive=True))
        yield Select([(op, op) for op in OPERATORS], value=clause.op if clause else "eq", allow_blank=False,
                     classes="clause-op")
        if clause is None:
            shown = ""
        elif clause.op in TYPE_OPS:
            shown = clause.value
        else:
            shown = to_jsonish(clause.value, indent=None)
        yield Input(shown, placeholder='"text", 12, 12n, true, null or a type',
                    classes="clause-value")
        yield Button("✕", classes="clause-remove")

    def read(self) -> FilterClause | None:
        field = self.query_one(".clause-field", Input).value.strip()
        if not field:
            return None
        op = self.query_one(".clause-op", Select).value
        raw = self.query_one(".clause-value", Input).value
        if op in TYPE_OPS:
            type_name = raw.strip()
            if type_name not in TYPE_NAMES:
                raise ValueError(f"{field}: type must be one of {', '.join(TYPE_NAMES)}")
            return FilterClause(field, op, type_name)
        try:
            value = parse_filter_value(raw)
        except ValueError as error:
            raise ValueError(f"{field}: {error}") from None
        return FilterClause(field, str(op), value)

    @on(Button.Pressed, ".clause-remove")
    def _remove(self) -> None:
        self.remove()


class FilterEditor(ModalScreen[QuerySpec | None]):
    BINDINGS = [
        Binding("f2", "apply", "Apply", id="filters.apply"),
        Binding("escape", "cancel", "Cancel", id="filters.cancel"),
    ]

    def __init__(self, spec: QuerySpec, fields: list[str], indexes: dict[str, tuple[str, ...]]) -> None:
        super().__init__(classes="modal")
        self.spec = spec
        self.fields = fields
        self.indexes = {DEFAULT_INDEX: ("_creationTime",), **indexes}

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog filter-dialog"):
            yield Label("Filter and sort", classes="dialog-title")
            yield Static("Clauses are combined with AND. Values are JSON (12 is a number, 12n an int64); "
                         "a bare word is a string. type/notype take a type name.", classes="dialog-hint")
            with VerticalScroll(id="clause-rows"):
                for clause in self.spec.clauses:
                    yield ClauseRow(self.fields, clause)
                yield ClauseRow(self.fields)
            with Horizontal(classes="dialog-row"):
                yield Button("+ clause", id="add-clause")
                yield Label(" index ")
                yield Select([(name, name) for name in self.indexes], value=self.spec.index or DEFAULT_INDEX,
                             allow_blank=False, id="index-select")
                yield Label(" order ")
                yield Select([("asc", "asc"), ("desc", "desc")], value=self.spec.order, allow_blank=False,
                             id="order-select")
            yield Static("", id="filter-error", classes="dialog-error", markup=False)
            with Horizontal(classes="dialog-buttons"):
                yield Button("Apply (F2)", variant="primary", id="apply")
                yield Button("Clear filters", id="clear")
                yield Button("Cancel", id="cancel")

    def on_mount(self) -> None:
        rows = list(self.query(ClauseRow))
        rows[-1].query_one(".clause-field", Input).focus()

    @on(Button.Pressed, "#add-clause")
    def _add(self) -> None:
        row = ClauseRow(self.fields)
        self.query_one("#clause-rows").mount(row)
        self.call_after_refresh(lambda: row.query_one(".clause-field", Input).focus())

    def read_spec(self) -> QuerySpec:
        clauses = []
        for row in self.query(ClauseRow):
            clause = row.read()
            if clause is not None:
                clauses.append(clause)
        index = str(self.query_one("#index-select", Select).value)
        order = str(self.query_one("#order-select", Select).value)
        return QuerySpec(tuple(clauses), None if index == DEFAULT_INDEX else index,
                         tuple(self.indexes.get(index, ())), order)

    @on(Input.Submitted)
    @on(Button.Pressed, "#apply")
    def action_apply(self) -> None:
        try:
            spec = self.read_spec()
        except ValueError as error:
            self.query_one("#filter-error", Static).update(f"✖ {error}")
            return
        self.dismiss(spec)

    @on(Button.Pressed, "#clear")
    def _clear(self) -> None:
        self.dismiss(QuerySpec(index=self.spec.index, index_fields=self.spec.index_fields, order=self.spec.order))

    @on(Button.Pressed, "#cancel")
    def action_cancel(self) -> None:
        self.dismiss(None)
