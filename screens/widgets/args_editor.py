"""The arguments editor: JSON5-ish text (TextArea) pre-filled with a skeleton from the args
validator, or a form with one Input per field when the args are a flat object.

`read()` parses and validates locally (console.validator_tools) and raises ArgsSyntaxError or
ArgsValidationError with the line/column or the offending path.
"""

from __future__ import annotations

from typing import Any, Callable

from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.widgets import ContentSwitcher, Input, Label, Static, TextArea

from console.validator_tools import (
    ArgsSyntaxError,
    ArgsValidationError,
    flat_fields,
    format_value,
    parse_args,
    skeleton,
    type_text,
    validate,
)

TableLookup = Callable[[int], "str | None"]
TEXT_KINDS = ("string", "id")


def field_text(value: Any, validator: dict) -> str:
    """How a form Input shows a field's value: strings and ids raw, the rest as JSON5-ish."""
    if isinstance(value, str) and _accepts_string(validator):
        return value
    return format_value(value, indent=0).replace("\n", " ")


def _accepts_string(validator: dict) -> bool:
    kind = validator.get("type")
    if kind in TEXT_KINDS:
        return True
    if kind == "union":
        return any(_accepts_string(member) for member in validator.get("value") or [])
    return False


def parse_field(text: str, validator: dict) -> Any:
    """A form field's text as a value of its validator's type."""
    kind = validator.get("type")
    if kind in TEXT_KINDS:
        return text
    stripped = text.strip()
    try:
        value = parse_args(stripped) if stripped else None
    except ArgsSyntaxError:
        if _accepts_string(validator):
            return text
        raise
    if kind in ("number", "float64") and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if kind in ("bigint", "int64") and isinstance(value, float) and value.is_integer():
        return int(value)  # typing 5 in an int64 field means 5n
    return value


class ArgsEditor(Vertical):
    DEFAULT_CSS = """
    ArgsEditor { height: 1fr; }
    ArgsEditor > #args-hint-box { height: auto; max-height: 9; }
    ArgsEditor #args-hint { color: $text-muted; padding: 0 1; height: auto; }
    ArgsEditor #args-text { height: 1fr; }
    ArgsEditor > #args-error { color: $error; padding: 0 1; height: auto; }
    ArgsEditor .form-row { height: 3; }
    ArgsEditor .form-row Label { width: 30; padding: 1 1 0 1; }
    ArgsEditor .form-row Input { width: 1fr; }
    """

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self.validator: dict | None = None
        self.fields: list[tuple[str, dict, bool]] | None = None
        self.table_of_id: TableLookup | None = None
        self._generation = 0  # form Input ids change per function: old ones may not be removed yet

    def compose(self) -> ComposeResult:
        with VerticalScroll(id="args-hint-box"):
            yield Static("", id="args-hint", markup=False)
        with ContentSwitcher(initial="args-text", id="args-switcher"):
            yield TextArea("{}", id="args-text", show_line_numbers=True, tab_behavior="indent", soft_wrap=False)
            yield VerticalScroll(id="args-form")
        yield Static("", id="args-error", markup=False)

    # -- content --------------------------------------------------------------

    @property
    def text_area(self) -> TextArea:
        return self.query_one("#args-text", TextArea)

    @property
    def mode(self) -> str:
        return "form" if self.query_one(ContentSwitcher).current == "args-form" else "json"

    @property
    def text(self) -> str:
        return self.text_area.text

    def set_function(self, validator: dict | None, args: Any = None) -> None:
        """Show a function's args: `args` if given (a value), else the validator's skeleton."""
        self.validator = validator
        self.fields = flat_fields(validator)
        hint = f"args: {type_text(validator, width=60)}" if validator else "args: any"
        hint += "\nJSON5 is fine: unquoted keys, 'quotes', trailing commas, // comments; int64 as 12n · F3: form"
        self.query_one("#args-hint", Static).update(hint)
        start = skeleton(validator) if args is None else args
        self.set_value({} if start is None else start)  # args are always an object, even for v.any()
        self._build_form()
        if self.mode == "form" and self.fields is None:
            self.query_one(ContentSwitcher).current = "args-text"
        self.show_error("")

    def set_value(self, value: Any) -> None:
        self.text_area.load_text(format_value(value))
        if self.mode == "form":
            self._fill_form(value)

    def set_text(self, text: str) -> None:
        self.text_area.load_text(text)

    def show_error(self, message: str) -> None:
        self.query_one("#args-error", Static).update(f"✖ {message}" if message else "")

    # -- form -----------------------------------------------------------------

    def _build_form(self) -> None:
        form = self.query_one("#args-form", VerticalScroll)
        form.remove_children()
        self._generation += 1
        if not self.fields:
            form.mount(Static("The form needs an object of simple fields; use the JSON editor (F3)."))
            return
        rows = []
        for position, (name, validator, optional) in enumerate(self.fields):
            label = f"{name}{'?' if optional else ''}: {type_text(validator, width=10_000)}"
            rows.append(Horizontal(Label(label[:40]), Input(placeholder="(omit)" if optional else "",
                                                                   id=f"field-{self._generation}-{position}", classes="form-field"),
                                   classes="form-row"))
        form.mount_all(rows)

    def _fill_form(self, value: Any) -> None:
        if not self.fields or not isinstance(value, dict):
            return
        for position, (name, validator, _optional) in enumerate(self.fields):
            try:
                box = self.query_one(f"#field-{self._generation}-{position}", Input)
            except Exception:  # the form is being rebuilt
                continue
            box.value = field_text(value[name], validator) if name in value else ""

    def _form_value(self) -> dict:
        out: dict[str, Any] = {}
        for position, (name, validator, optional) in enumerate(self.fields or []):
            text = self.query_one(f"#field-{self._generation}-{position}", Input).value
            if optional and text == "":
                continue
            try:
                out[name] = parse_field(text, validator)
            except ArgsSyntaxError as error:
                raise ArgsValidationError(f".{name}", error.message) from None
        return out

    def toggle_mode(self) -> str:
        """Switch JSON <-> form, carrying the current value across; returns the new mode."""
        switcher = self.query_one(ContentSwitcher)
        if self.mode == "json":
            if self.fields is None:
                self.show_error("The form view needs an object of simple fields; staying in JSON.")
                return "json"
            try:
                value = parse_args(self.text)
            except ArgsSyntaxError as error:
                self.show_error(f"Fix the JSON first: {error}")
                return "json"
            switcher.current = "args-form"
            self._fill_form(value)
            first = self.query(".form-field")
            if first:
                first.first().focus()
        else:
            try:
                self.text_area.load_text(format_value(self._form_value()))
            except ArgsValidationError as error:
                self.show_error(str(error))
                return "form"
            switcher.current = "args-text"
            self.text_area.focus()
        self.show_error("")
        return self.mode

    # -- reading --------------------------------------------------------------

    def read(self) -> Any:
        """The arguments as a value, checked against the validator; raises with the reason."""
        value = self._form_value() if self.mode == "form" else parse_args(self.text)
        validate(self.validator, value, table_of_id=self.table_of_id)
        return value
