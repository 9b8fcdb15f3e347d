"""The modules-and-functions tree of the Functions screen, from `_system/cli/modules:apiSpec`.

Each function shows a type badge (Q/M/A, HTTP for routes) and `internal` when it is not public;
`set_filter` keeps only functions whose path contains the typed text (case-insensitive, every
word must match), and the tree is rebuilt only when the filter changes.
"""

from __future__ import annotations

from dataclasses import dataclass

from rich.text import Text
from textual.widgets import Tree

from console.client import FunctionSpec

BADGES = {"Query": ("Q", "bold cyan"), "Mutation": ("M", "bold yellow"), "Action": ("A", "bold magenta"),
          "HttpAction": ("HTTP", "bold green")}
KINDS = {"Query": "query", "Mutation": "mutation", "Action": "action"}


def short_path(identifier: str) -> str:
    """`posts.js:list` -> `posts:list` (both call the same function, P§1.5)."""
    module, _, name = identifier.rpartition(":")
    if module.endswith(".js"):
        module = module[:-3]
    return f"{module}:{name}" if module else identifier


@dataclass(frozen=True)
class FunctionEntry:
    """A function or an HTTP route as the screen uses it."""

    spec: FunctionSpec

    @property
    def path(self) -> str:
        if self.spec.function_type == "HttpAction":
            return f"{self.spec.method} {self.spec.http_path}"
        return short_path(self.spec.identifier or "")

    @property
    def module(self) -> str:
        if self.spec.function_type == "HttpAction":
            return "HTTP routes"
        return self.path.rpartition(":")[0]

    @property
    def name(self) -> str:
        return self.path if self.is_http else self.path.rpartition(":")[2]

    @property
    def kind(self) -> str | None:
        """run_function's kind, None for HTTP routes."""
        return KINDS.get(self.spec.function_type)

    @property
    def is_http(self) -> bool:
        return self.spec.function_type == "HttpAction"

    @property
    def is_internal(self) -> bool:
        return self.spec.visibility == "internal"

    def label(self) -> Text:
        letter, style = BADGES.get(self.spec.function_type, ("?", "bold"))
        text = Text()
        text.append(f"{letter[0]} ", style=style)
        text.append(self.name)
        if self.is_internal:
            text.append(" internal", style="dim italic")
        return text


def entries_from_spec(specs: list[FunctionSpec]) -> list[FunctionEntry]:
    entries = [FunctionEntry(spec) for spec in specs if spec.identifier or spec.function_type == "HttpAction"]
    return sorted(entries, key=lambda e: (e.is_http, e.module, e.name))


def matches(entry: FunctionEntry, text: str) -> bool:
    haystack = f"{entry.path} {entry.spec.function_type} {'internal' if entry.is_internal else 'public'}".lower()
    return all(word in haystack for word in text.lower().split())


class FunctionTree(Tree[FunctionEntry]):
    """Modules as branches, functions as leaves (data: FunctionEntry)."""

    DEFAULT_CSS = "FunctionTree { height: 1fr; }"

    def __init__(self, **kwargs) -> None:
        super().__init__("functions", **kwargs)
        self.show_root = False
        self.guide_depth = 2
        self.entries: list[FunctionEntry] = []
        self.filter_text = ""

    def set_entries(self, entries: list[FunctionEntry]) -> None:
        self.entries = entries
        self._rebuild()

    def set_filter(self, text: str) -> None:
        if text.strip() != self.filter_text:
            self.filter_text = text.strip()
            self._rebuild()

    @property
    def visible_entries(self) -> list[FunctionEntry]:
        return [e for e in self.entries if matches(e, self.filter_text)]

    def _rebuild(self) -> None:
        self.clear()
        modules: dict[str, object] = {}
        for entry in self.visible_entries:
            branch = modules.get(entry.module)
            if branch is None:
                branch = self.root.add(Text(entry.module, style="bold"), expand=True)
                modules[entry.module] = branch
            branch.add_leaf(entry.label(), data=entry)
        self.root.expand()

    def select_path(self, path: str) -> bool:
        """Move the cursor to a function by path; False when it is not shown. After a rebuild
        the new nodes have no line yet, so the move waits for the next refresh."""
        for node in self._leaves():
            if node.data is not None and node.data.path == path:
                self.call_after_refresh(self.move_cursor, node)
                return True
        return False

    def first_function(self) -> FunctionEntry | None:
        for node in self._leaves():
            return node.data
        return None

    def _leaves(self):
        for branch in self.root.children:
            yield from branch.children
