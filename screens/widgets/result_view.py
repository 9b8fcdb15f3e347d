"""The result pane of the Functions screen: value with Convex types, duration, log lines with
levels, function errors (errorMessage + ConvexError data) apart from transport errors.

Large values are rendered lazily: lines come from a generator, `PAGE_LINES` at a time, with a
clear "more" mark; nothing walks the whole value on the UI thread except to count its size.
"""

from __future__ import annotations

import base64
import difflib
import itertools
import json
import math
import re
from dataclasses import dataclass, field
from typing import Any, Callable, Iterator

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import VerticalScroll
from textual.widgets import Static

from console import ids

PAGE_LINES = 300
_REQUEST_LINE = re.compile(r"^\[Request ID: ([^\]]+)\] Server Error$")
LEVEL_STYLES = {"LOG": "white", "INFO": "cyan", "WARN": "yellow", "ERROR": "bold red", "DEBUG": "dim"}
KEY = "bold"
STYLES = {"int": "magenta", "num": "bright_magenta", "str": "green", "id": "bold cyan", "bytes": "yellow", "null": "dim italic"}


@dataclass
class RunOutcome:
    """What one run shows. status: success | error (the function failed) | transport (no usable
    answer) | invalid (not sent: bad args) | info (a note, e.g. an HTTP route)."""

    path: str
    status: str
    value: Any = None
    error_message: str = ""
    error_data: Any = None
    log_lines: list[Any] = field(default_factory=list)
    elapsed: float | None = None  # seconds
    who: str = "admin"
    note: str = ""
    size: int | None = None  # bytes (Convex size) of the value
    live: str = ""  # "live · update 3" while watching


# ---------------------------------------------------------------------------
# Value lines, lazily


def value_lines(value: Any, table_of_id: Callable[[int], str | None] | None = None) -> Iterator[Text]:
    """Pretty, typed lines (`12n`, `bytes(3) "AQID"`, ids marked with their table) one at a time."""
    yield from _lines(value, 0, None, False, table_of_id)


def _lines(value: Any, depth: int, key: str | None, comma: bool, table_of_id=None) -> Iterator[Text]:
    pad = "  " * depth
    head = Text(pad)
    if key is not None:
        head.append(json.dumps(key, ensure_ascii=False), style=KEY)
        head.append(": ")
    tail = "," if comma else ""
    if isinstance(value, dict) and value:
        yield head + Text("{")
        last = len(value) - 1
        for position, (name, item) in enumerate(value.items()):
            yield from _lines(item, depth + 1, name, position < last, table_of_id)
        yield Text(pad + "}" + tail)
    elif isinstance(value, list) and value:
        yield head + Text("[")
        last = len(value) - 1
        for position, item in enumerate(value):
            yield from _lines(item, depth + 1, None, position < last, table_of_id)
        yield Text(pad + "]" + tail)
    else:
        yield head + scalar_text(value, table_of_id) + Text(tail)


def _id_table(value: str, table_of_id) -> str | None:
    if table_of_id is None:
        return None
    try:
        return table_of_id(ids.decode_id(value)[0])
    except ids.InvalidId:
        return None


def scalar_text(value: Any, table_of_id=None) -> Text:
    if value is None:
        return Text("null", style=STYLES["null"])
    if isinstance(value, bool):
        return Text("true" if value else "false", style=STYLES["num"])
    if isinstance(value, int):
        return Text(f"{value}n", style=STYLES["int"])
    if isinstance(value, float):
        if math.isnan(value) or math.isinf(value):
            return Text("NaN" if math.isnan(value) else ("Infinity" if value > 0 else "-Infinity"), style=STYLES["num"])
        shown = str(int(value)) if value.is_integer() and abs(value) < 1e16 else repr(value)
        return Text(shown, style=STYLES["num"])
    if isinstance(value, bytes):
        encoded = base64.b64encode(value[:48]).decode("ascii")
        more = "…" if len(value) > 48 else ""
        return Text(f'bytes({len(value)}) "{encoded}{more}"', style=STYLES["bytes"])
    if isinstance(value, str):
        shown = value if len(value) <= 2000 else value[:2000]
        text = Text(json.dumps(shown, ensure_ascii=False), style=STYLES["id"] if ids.is_id(value) else STYLES["str"])
        if len(value) > 2000:
            text.append(f" … ({len(value):,} characters)", style="dim")
        if ids.is_id(value):
            table = _id_table(value, table_of_id)
            text.append(f'  → Id<"{table}">' if table else "  → Id", style="dim cyan")
        return text
    if isinstance(value, dict):
        return Text("{}")
    if isinstance(value, list):
        return Text("[]")
    return Text(repr(value))


# ---------------------------------------------------------------------------
# Log lines


def log_line_text(line: Any) -> Text:
    """`[LEVEL] message` strings or structured `{level, messages}` lines, coloured by level."""
    if isinstance(line, dict):
        level = str(line.get("level", "LOG")).upper()
        message = " ".join(str(m) for m in line.get("messages") or [])
    else:
        match = re.match(r"^\[([A-Z]+)\]\s?(.*)$", str(line), re.DOTALL)
        level, message = (match.group(1), match.group(2)) if match else ("LOG", str(line))
    text = Text()
    text.append(f"[{level}] ", style=LEVEL_STYLES.get(level, "white"))
    text.append(message)
    return text


def error_summary(message: str) -> tuple[str | None, str]:
    """(request id, the message without the `[Request ID] Server Error` line)."""
    lines = message.strip().splitlines()
    if lines and _REQUEST_LINE.match(lines[0].strip()):
        return _REQUEST_LINE.match(lines[0].strip()).group(1), "\n".join(lines[1:]).strip()
    return None, message.strip()


def format_elapsed(seconds: float | None) -> str:
    if seconds is None:
        return ""
    return f"{seconds * 1000:.1f} ms" if seconds < 1 else f"{seconds:.2f} s"


def format_size(size: int | None) -> str:
    if size is None:
        return ""
    if size < 1024:
        return f"{size} B"
    return f"{size / 1024:.1f} KiB" if size < 1024 * 1024 else f"{size / 1024 / 1024:.1f} MiB"


# ---------------------------------------------------------------------------
# The widget


class ResultView(VerticalScroll):
    """Header, value (paged lines), error, logs. `more()` shows the next PAGE_LINES lines."""

    DEFAULT_CSS = """
    ResultView { height: 1fr; }
    ResultView > #result-head { padding: 0 1; background: $boost; }
    ResultView > Static { padding: 0 1; height: auto; }
    ResultView > #result-more { color: $warning; }
    """

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self.outcome: RunOutcome | None = None
        self._lines: Iterator[Text] | None = None
        self._shown: list[Text] = []
        self.has_more = False
        self.table_of_id: Callable[[int], str | None] | None = None

    def compose(self) -> ComposeResult:
        yield Static("No run yet. Choose a function, edit its arguments, press ctrl+r.", id="result-head")
        yield Static("", id="result-body")
        yield Static("", id="result-more")
        yield Static("", id="result-error")
        yield Static("", id="result-logs")

    # -- public ---------------------------------------------------------------

    def show(self, outcome: RunOutcome) -> None:
        self.outcome = outcome
        self.query_one("#result-head", Static).update(self._head(outcome))
        self._lines = value_lines(outcome.value, self.table_of_id) if outcome.status == "success" else None
        self._shown = []
        self.has_more = False
        self.more()
        self.query_one("#result-error", Static).update(self._error(outcome))
        self.query_one("#result-logs", Static).update(self._logs(outcome))
        self.scroll_home(animate=False)

    def more(self) -> bool:
        """Append the next page of value lines; False when everything is shown."""
        if self._lines is None:
            self.query_one("#result-body", Static).update("")
            self.query_one("#result-more", Static).update("")
            return False
        page = list(itertools.islice(self._lines, PAGE_LINES + 1))
        self.has_more = len(page) > PAGE_LINES
        self._shown.extend(page[:PAGE_LINES])
        if self.has_more:  # keep the extra line for the next page
            self._lines = itertools.chain([page[-1]], self._lines)
        self.query_one("#result-body", Static).update(Text("\n").join(self._shown))
        mark = (f"⋯ truncated: showing the first {len(self._shown):,} lines; press m for {PAGE_LINES} more"
                if self.has_more else "")
        self.query_one("#result-more", Static).update(mark)
        return self.has_more

    def show_diff(self, left_label: str, left: str, right_label: str, right: str) -> None:
        self.outcome = None
        self._lines = None
        self.has_more = False
        diff = list(difflib.unified_diff(left.splitlines(), right.splitlines(), left_label, right_label, lineterm="", n=2))
        self._shown = []
        for line in diff or ["(no difference)"]:
            style = "green" if line.startswith("+") else "red" if line.startswith("-") else "cyan" if line.startswith("@@") else ""
            self._shown.append(Text(line, style=style))
        self.query_one("#result-head", Static).update(Text(f"Diff  {left_label}  →  {right_label}", style="bold"))
        self.query_one("#result-body", Static).update(Text("\n").join(self._shown))
        for name in ("#result-more", "#result-error", "#result-logs"):
            self.query_one(name, Static).update("")

    @property
    def body_text(self) -> str:
        return "\n".join(line.plain for line in self._shown)

    # -- parts ----------------------------------------------------------------

    def _head(self, outcome: RunOutcome) -> Text:
        text = Text()
        symbol, style, label = {
            "success": ("✔", "bold green", "success"),
            "error": ("✖", "bold red", "function error"),
            "transport": ("⚠", "bold red", "transport error"),
            "invalid": ("✖", "bold yellow", "not sent"),
            "info": ("ℹ", "bold cyan", ""),
        }.get(outcome.status, ("?", "bold", outcome.status))
        text.append(f"{symbol} {label}  ", style=style)
        text.append(outcome.path, style="bold")
        who = {"admin": "as admin", "token": "with a token"}.get(outcome.who, outcome.who)
        details = [d for d in (format_elapsed(outcome.elapsed), who,
                               format_size(outcome.size), outcome.live) if d]
        if details:
            text.append("  " + " · ".join(details), style="dim")
        if outcome.note:
            text.append("\n" + outcome.note, style="italic")
        return text

    def _error(self, outcome: RunOutcome) -> Text:
        if outcome.status == "error":
            request_id, message = error_summary(outcome.error_message)
            text = Text()
            if outcome.error_data is not None:
                text.append("ConvexError", style="bold red")
                text.append(" (thrown by the function; errorData below)\n", style="dim")
            first, _, rest = message.partition("\n")
            text.append(first + "\n", style="red")
            if rest:
                text.append(rest + "\n")
            if request_id:
                text.append(f"Request ID: {request_id}\n", style="dim")
            if outcome.error_data is not None:
                text.append("errorData:\n", style="bold")
                for line in itertools.islice(value_lines(outcome.error_data), PAGE_LINES):
                    text.append_text(line)
                    text.append("\n")
            return text
        if outcome.status in ("transport", "invalid"):
            return Text(outcome.error_message, style="red" if outcome.status == "transport" else "yellow")
        return Text("")

    def _logs(self, outcome: RunOutcome) -> Text:
        if not outcome.log_lines:
            return Text("")
        text = Text(f"Log lines ({len(outcome.log_lines)})\n", style="bold")
        for line in outcome.log_lines[:1000]:
            text.append_text(log_line_text(line))
            text.append("\n")
        if len(outcome.log_lines) > 1000:
            text.append(f"⋯ {len(outcome.log_lines) - 1000} more log lines not shown\n", style="yellow")
        return text
