"""The UI's view of saved sessions: keymap, and the last screen, table and query per profile.

It adapts `console.sessions` (owned by the core) to what the screens need; when no store is
given (tests, a bare --url) it keeps the state in memory only.
"""

from __future__ import annotations

from typing import Any

from console.connection import Connection


class SessionState:
    def __init__(self, settings: Any, connection: Connection | None) -> None:
        self.settings = settings
        self.connection = connection
        self.profile: str | None = getattr(settings, "profile", None) or getattr(settings, "profile_name", None)
        self._memory: dict[str, Any] = {}
        self._state: dict[str, Any] = self._load()

    # -- keymap -----------------------------------------------------------------

    def keymap(self) -> dict[str, str]:
        try:
            keys = getattr(self.settings, "keys", None)
        except Exception:  # an unreadable profiles.toml: default keys
            keys = None
        return {str(k): str(v) for k, v in dict(keys or {}).items()}

    # -- last state -------------------------------------------------------------

    def state_key(self) -> str:
        """As console.startup chooses it: the profile, else `emulator`, else the URL."""
        if self.profile:
            return self.profile
        given = getattr(self.settings, "state_key", None)
        if given and given != "default":
            return str(given)
        if self.connection is None:
            return "default"
        return "emulator" if self.connection.kind == "emulator" else self.connection.url

    def _store(self) -> Any:
        return self.settings

    def _load(self) -> dict[str, Any]:
        store = self._store()
        loader = getattr(store, "load_state", None) or getattr(store, "last_state", None)
        if callable(loader):
            try:
                state = loader(self.state_key())
                return dict(state or {})
            except Exception:  # a damaged state file must not stop the console
                return {}
        return dict(self._memory.get(self.state_key(), {}))

    def _save(self) -> None:
        store = self._store()
        saver = getattr(store, "save_state", None)
        if callable(saver):
            try:
                saver(self.state_key(), self._state)
            except Exception:  # best effort: losing the last state is not worth a crash
                pass
        self._memory[self.state_key()] = dict(self._state)

    def remember(self, **items: Any) -> None:
        changed = False
        for key, value in items.items():
            if self._state.get(key) != value:
                self._state[key] = value
                changed = True
        if changed:
            self._save()

    def ui_state(self, screen_name: str) -> dict[str, Any]:
        """A screen's own saved UI state for this profile (a copy; {} when none)."""
        found = self._state.get(screen_name)
        return dict(found) if isinstance(found, dict) else {}

    def remember_ui(self, screen_name: str, **values: Any) -> None:
        """Merge `values` (JSON-able) into a screen's saved UI state and save it."""
        state = self.ui_state(screen_name)
        state.update(values)
        self.remember(**{screen_name: state})

    def remember_query(self, table: str, query_state: dict) -> None:
        queries = dict(self._state.get("queries") or {})
        queries[table] = query_state
        self.remember(table=table, queries=queries)

    def last_screen(self) -> str:
        return str(self._state.get("screen") or "data")

    def last_table(self) -> str | None:
        table = self._state.get("table")
        return table if isinstance(table, str) else None

    def last_query(self, table: str) -> dict | None:
        queries = self._state.get("queries") or {}
        return queries.get(table) if isinstance(queries, dict) else None

    def switch(self, connection: Connection, profile: str | None) -> None:
        self.connection = connection
        self.profile = profile
        if self.settings is not None and hasattr(self.settings, "state_key"):
            self.settings.profile = profile
            self.settings.state_key = "default"
            self.settings.state_key = self.state_key()
        self._state = self._load()
