"""A live log list for the Logs screen: a bounded ring buffer of rows, a filtered view of it,
and a Line-API widget that renders only the rows on screen.

Appends are diffs: new rows go to the end of the ring and of the filtered view, the oldest fall
off the front; nothing is rebuilt except when the filter itself changes. `LogModel` has no
Textual dependency (the benchmark and tests drive it directly).
"""

from __future__ import annotations

import collections
import re
import time
from dataclasses import dataclass
from typing import Any, Iterable

from rich.segment import Segment
from rich.text import Text
from textual import events
from textual.binding import Binding
from textual.geometry import Size
from textual.message import Message
from textual.scroll_view import ScrollView
from textual.strip import Strip

LEVELS = ("LOG", "INFO", "WARN", "ERROR", "DEBUG")
LEVEL_STYLES = {"LOG": "white", "INFO": "cyan", "WARN": "yellow", "ERROR": "bold red", "DEBUG": "dim"}
TYPE_BADGES = {"Query": "Q", "Mutation": "M", "Action": "A", "HttpAction": "H"}
DEFAULT_CAPACITY = 20_000
_LINE = re.compile(r"^\[([A-Z]+)\]\s?(.*)$", re.DOTALL)


@dataclass(slots=True)
class LogRow:
    seq: int
    ts: float  # seconds since the epoch
    request_id: str
    execution_id: str
    identifier: str
    udf_type: str
    kind: str  # "line" | "completion"
    level: str  # a LEVELS member; completions: "ERROR" when failed, else ""
    status: str  # "success" | "failure" | "" (an action's line before it completes)
    text: str
    duration: float | None = None  # seconds, completions only
    caller: str = ""
    identity: str = ""

    def haystack(self) -> str:
        return f"{self.identifier} {self.request_id} {self.text}".lower()


def _line_parts(line: Any, default_ts: float) -> tuple[str, str, float]:
    if isinstance(line, dict):
        level = str(line.get("level", "LOG")).upper()
        message = " ".join(str(m) for m in line.get("messages") or [])
        stamp = line.get("timestamp")
        ts = stamp / 1000 if isinstance(stamp, (int, float)) else default_ts
        return level, message, ts
    match = _LINE.match(str(line))
    if match:
        return match.group(1), match.group(2), default_ts
    return "LOG", str(line), default_ts


class RowMaker:
    """FunctionExecutionJson entries (P§3.6) -> LogRows with increasing sequence numbers."""

    def __init__(self) -> None:
        self.seq = 0

    def rows(self, entries: Iterable[dict]) -> list[LogRow]:
        out: list[LogRow] = []
        for entry in entries:
            out.extend(self._entry_rows(entry))
        return out

    def _entry_rows(self, entry: dict) -> list[LogRow]:
        ts = float(entry.get("timestamp") or time.time())
        completion = entry.get("kind") == "Completion"
        failed = completion and entry.get("error") is not None
        status = ("failure" if failed else "success") if completion else ""
        base = dict(request_id=str(entry.get("requestId") or ""), execution_id=str(entry.get("executionId") or ""),
                    identifier=str(entry.get("identifier") or ""), udf_type=str(entry.get("udfType") or ""),
                    caller=str(entry.get("caller") or ""), identity=str(entry.get("identityType") or ""))
        rows = []
        for line in entry.get("logLines") or []:
            level, message, line_ts = _line_parts(line, ts)
            self.seq += 1
            rows.append(LogRow(self.seq, line_ts, kind="line", level=level if level in LEVELS else "LOG",
                               status=status, text=message, **base))
        if completion:
            self.seq += 1
            if failed:
                text = str(entry.get("error") or "").strip().splitlines()
                text = text[0] if text else "error"
            else:
                text = "cached" if entry.get("cachedResult") else "success"
            duration = entry.get("executionTime")
            rows.append(LogRow(self.seq, ts, kind="completion", level="ERROR" if failed else "", status=status,
                               text=text, duration=float(duration) if isinstance(duration, (int, float)) else None,
                               **base))
        return rows


@dataclass(frozen=True)
class LogFilter:
    text: str = ""
    function: str = ""
    status: str = "all"  # all | success | failure
    level: str = "all"  # all | a LEVELS member
    system: bool = False  # show `_system/*` calls (the console's own admin reads)

    def matches(self, row: LogRow) -> bool:
        if not self.system and row.identifier.startswith("_system/"):
            return False
        if self.status != "all" and row.status != self.status:
            return False
        if self.level != "all" and row.level != self.level:
            return False
        if self.function and self.function.lower() not in row.identifier.lower():
            return False
        if self.text and self.text.lower() not in row.haystack():
            return False
        return True

    @property
    def active(self) -> bool:
        return self != LogFilter()


class LogModel:
    """Every row in a ring of `capacity`, and the rows the filter keeps (a bounded view too)."""

    def __init__(self, capacity: int = DEFAULT_CAPACITY) -> None:
        self.capacity = capacity
        self.ring: collections.deque[LogRow] = collections.deque(maxlen=capacity)
        self.visible: collections.deque[LogRow] = collections.deque(maxlen=capacity)
        self.filter = LogFilter()
        self.total = 0  # rows ever added

    def add(self, rows: list[LogRow]) -> tuple[int, int]:
        """Append rows; returns (rows added to the view, rows dropped from the view's front)."""
        if not rows:
            return 0, 0
        self.total += len(rows)
        self.ring.extend(rows)
        before = len(self.visible)
        matched = [row for row in rows if self.filter.matches(row)]
        self.visible.extend(matched)
        dropped = before + len(matched) - len(self.visible)
        oldest = self.ring[0].seq
        while self.visible and self.visible[0].seq < oldest:
            self.visible.popleft()
            dropped += 1
        return len(matched), dropped

    def set_filter(self, log_filter: LogFilter) -> None:
        self.filter = log_filter
        self.visible = collections.deque((row for row in self.ring if log_filter.matches(row)), maxlen=self.capacity)

    def clear(self) -> None:
        self.ring.clear()
        self.visible.clear()

    def request_rows(self, request_id: str) -> list[LogRow]:
        return [row for row in self.ring if row.request_id == request_id]


def row_text(row: LogRow) -> Text:
    text = Text(no_wrap=True, overflow="ellipsis")
    stamp = time.strftime("%H:%M:%S", time.localtime(row.ts)) + f".{int(row.ts * 1000) % 1000:03d}"
    text.append(stamp + " ", style="dim")
    text.append(TYPE_BADGES.get(row.udf_type, "?") + " ", style="bold")
    text.append(f"{row.identifier:<28.28} ", style="cyan")
    if row.kind == "completion":
        ok = row.status == "success"
        text.append("✔ " if ok else "✖ ", style="green" if ok else "bold red")
        if row.duration is not None:
            text.append(f"{row.duration * 1000:7.1f} ms ", style="dim")
        text.append(row.text.replace("\n", " ⏎ "), style="" if ok else "red")
    else:
        text.append(f"[{row.level}] ", style=LEVEL_STYLES.get(row.level, "white"))
        text.append(row.text.replace("\n", " ⏎ "))
    return text


class LogView(ScrollView, can_focus=True):
    """Renders `model.visible`; follows the tail unless the cursor moved up."""

    BINDINGS = [
        Binding("up,k", "cursor(-1)", "Up", show=False, id="logs.up"),
        Binding("down,j", "cursor(1)", "Down", show=False, id="logs.down"),
        Binding("pageup", "page(-1)", "Page up", show=False, id="logs.page-up"),
        Binding("pagedown", "page(1)", "Page down", show=False, id="logs.page-down"),
        Binding("home,g", "first", "First", show=False, id="logs.first"),
        Binding("end,G", "last", "Follow", show=False, id="logs.last"),
        Binding("enter", "open", "Request", id="logs.open"),
    ]
    DEFAULT_CSS = "LogView { height: 1fr; } LogView > .logview--cursor { background: $accent 40%; }"
    COMPONENT_CLASSES = {"logview--cursor"}

    class Opened(Message):
        def __init__(self, row: LogRow) -> None:
            super().__init__()
            self.row = row

    def __init__(self, model: LogModel | None = None, **kwargs) -> None:
        super().__init__(**kwargs)
        self.model = model or LogModel()
        self.cursor = -1  # index in model.visible; -1: none
        self.follow = True
        self._cache: dict[tuple[int, int, bool], Strip] = {}
        self.delivered = 0  # rows that reached the view (benchmarks)

    # -- data ------------------------------------------------------------------

    def add_rows(self, rows: list[LogRow]) -> None:
        added, dropped = self.model.add(rows)
        self.delivered += len(rows)
        if not added and not dropped:
            return
        if dropped and not self.follow:
            self.cursor = max(0, self.cursor - dropped)
            self.scroll_to(y=max(0, self.scroll_y - dropped), animate=False, immediate=True)
        self._resize()
        if self.follow:
            self.cursor = len(self.model.visible) - 1
            self.scroll_end(animate=False, immediate=True)
        self.refresh()

    def set_filter(self, log_filter: LogFilter) -> None:
        self.model.set_filter(log_filter)
        self._cache.clear()
        self.follow = True
        self._resize()
        self.cursor = len(self.model.visible) - 1
        self.scroll_end(animate=False, immediate=True)
        self.refresh()

    def clear(self) -> None:
        self.model.clear()
        self._cache.clear()
        self.cursor = -1
        self._resize()
        self.refresh()

    def _resize(self) -> None:
        self.virtual_size = Size(self.size.width, len(self.model.visible))

    @property
    def current(self) -> LogRow | None:
        if 0 <= self.cursor < len(self.model.visible):
            return self.model.visible[self.cursor]
        return None

    # -- rendering ---------------------------------------------------------------

    def render_line(self, y: int) -> Strip:
        index = self.scroll_offset.y + y
        width = self.size.width
        if not 0 <= index < len(self.model.visible):
            return Strip.blank(width)
        row = self.model.visible[index]
        selected = index == self.cursor and self.has_focus
        key = (row.seq, width, selected)
        strip = self._cache.get(key)
        if strip is None:
            text = row_text(row)
            text.truncate(width, overflow="ellipsis", pad=True)
            segments = list(text.render(self.app.console))
            if selected:
                style = self.get_component_rich_style("logview--cursor")
                segments = list(Segment.apply_style(segments, post_style=style))
            strip = Strip(segments, width).crop(0, width)
            if len(self._cache) > 4000:
                self._cache.clear()
            self._cache[key] = strip
        return strip

    def on_resize(self, event: events.Resize) -> None:
        self._cache.clear()
        self._resize()

    def on_focus(self) -> None:
        self.refresh()

    def on_blur(self) -> None:
        self.refresh()

    # -- moving ------------------------------------------------------------------

    def _move_to(self, index: int) -> None:
        count = len(self.model.visible)
        if not count:
            return
        self.cursor = max(0, min(count - 1, index))
        self.follow = self.cursor == count - 1
        height = self.size.height
        if self.cursor < self.scroll_y:
            self.scroll_to(y=self.cursor, animate=False, immediate=True)
        elif self.cursor >= self.scroll_y + height:
            self.scroll_to(y=self.cursor - height + 1, animate=False, immediate=True)
        self.refresh()

    def action_cursor(self, delta: int) -> None:
        self._move_to((self.cursor if self.cursor >= 0 else len(self.model.visible)) + delta)

    def action_page(self, direction: int) -> None:
        self._move_to(self.cursor + direction * max(1, self.size.height - 1))

    def action_first(self) -> None:
        self._move_to(0)

    def action_last(self) -> None:
        self._move_to(len(self.model.visible) - 1)
        self.follow = True

    def action_open(self) -> None:
        row = self.current
        if row is not None:
            self.post_message(self.Opened(row))

    def on_click(self, event: events.Click) -> None:
        self._move_to(self.scroll_offset.y + event.y)
        if event.chain >= 2:
            self.action_open()
