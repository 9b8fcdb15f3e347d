"""Keyset paging over a table with constant memory: only the current page of documents is
kept, plus a stack of cursors (one short string per page visited) to go back.

A view is anchored at the start of the order (g) or at its end (G: the other order's first
page, reversed). Going towards the anchor pops the stack; going away from it continues the
query with the last `continueCursor`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from screens.formatting import format_count

Order = Literal["asc", "desc"]
PAGE_SIZE = 100


def flip(order: Order) -> Order:
    return "desc" if order == "asc" else "asc"


@dataclass(frozen=True)
class PageRequest:
    position: int  # pages away from the anchor
    cursor: str | None
    order: Order  # the order the deployment is asked for
    generation: int


@dataclass
class Pager:
    order: Order = "asc"
    page_size: int = PAGE_SIZE
    anchor: Literal["start", "end"] = "start"
    docs: list[dict] = field(default_factory=list)
    is_done: bool = False
    continue_cursor: str | None = None
    position: int = 0
    generation: int = 0
    # stack[i] = (cursor that loads page i, documents before page i from the anchor)
    stack: list[tuple[str | None, int]] = field(default_factory=lambda: [(None, 0)])

    @property
    def query_order(self) -> Order:
        return self.order if self.anchor == "start" else flip(self.order)

    def restart(self, anchor: Literal["start", "end"] = "start") -> PageRequest:
        """Forget everything and ask for the first page from `anchor`."""
        self.anchor = anchor
        self.stack = [(None, 0)]
        self.generation += 1
        return PageRequest(0, None, self.query_order, self.generation)

    def reload(self) -> PageRequest:
        self.generation += 1
        cursor = self.stack[self.position][0]
        return PageRequest(self.position, cursor, self.query_order, self.generation)

    def _away(self) -> PageRequest | None:
        if self.is_done or self.continue_cursor is None:
            return None
        self.generation += 1
        return PageRequest(self.position + 1, self.continue_cursor, self.query_order, self.generation)

    def _towards(self) -> PageRequest | None:
        if self.position == 0:
            return None
        self.generation += 1
        cursor = self.stack[self.position - 1][0]
        return PageRequest(self.position - 1, cursor, self.query_order, self.generation)

    def next(self) -> PageRequest | None:
        return self._away() if self.anchor == "start" else self._towards()

    def previous(self) -> PageRequest | None:
        return self._towards() if self.anchor == "start" else self._away()

    def accept(self, request: PageRequest, page: list[dict], continue_cursor: str | None, is_done: bool) -> bool:
        """Take a loaded page; False (ignored) if a newer request was made since."""
        if request.generation != self.generation:
            return False
        if request.position == len(self.stack):
            before = self.stack[-1][1] + len(self.docs)
            self.stack.append((request.cursor, before))
        del self.stack[request.position + 1 :]
        self.position = request.position
        self.docs = list(reversed(page)) if self.anchor == "end" else list(page)
        self.continue_cursor = continue_cursor
        self.is_done = is_done
        return True

    def current_request(self) -> PageRequest:
        """What loads the page on screen (the cursor it was loaded from), without a new generation."""
        return PageRequest(self.position, self.stack[self.position][0], self.query_order, self.generation)

    def replace_live(self, page: list[dict], continue_cursor: str | None, is_done: bool) -> list[dict]:
        """A newer result of the page on screen (live query or poll): the documents to show."""
        self.docs = list(reversed(page)) if self.anchor == "end" else list(page)
        self.continue_cursor = continue_cursor
        self.is_done = is_done
        return self.docs

    @property
    def can_go_next(self) -> bool:
        return (not self.is_done) if self.anchor == "start" else self.position > 0

    @property
    def can_go_previous(self) -> bool:
        return self.position > 0 if self.anchor == "start" else not self.is_done

    def window(self, total: int | None) -> tuple[int, int] | None:
        """1-based (first, last) of the shown documents, when they can be known."""
        if not self.docs:
            return None
        before = self.stack[self.position][1]
        if self.anchor == "start":
            return before + 1, before + len(self.docs)
        if total is None:
            return None
        last = total - before
        return last - len(self.docs) + 1, last

    def describe(self, total: int | None, filtered: bool) -> str:
        """An honest summary: `Showing 101–200 of 1,000,000`."""
        if not self.docs:
            if not self.is_done:
                return "No matching documents in the rows scanned so far (n: keep scanning)"
            return "No matching documents" if filtered else "No documents"
        window = self.window(None if filtered else total)
        if window is None:
            before = self.stack[self.position][1]
            return f"Showing the last {before + 1:,}–{before + len(self.docs):,} matching (from the end)"
        first, last = window
        if filtered:
            more = "" if self.is_done and self.anchor == "start" else ", more after"
            return f"Showing {first:,}–{last:,} matching{more} ({format_count(total)} in table)"
        return f"Showing {first:,}–{last:,} of {format_count(total)}"


def document_fields(docs: list[dict[str, Any]]) -> list[str]:
    """Column order: `_id`, `_creationTime`, then fields in order of first appearance."""
    seen: dict[str, None] = {"_id": None, "_creationTime": None}
    for doc in docs:
        for name in doc:
            seen.setdefault(name, None)
    return list(seen)
