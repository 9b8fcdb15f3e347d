"""Saved sessions: profiles, secrets, key bindings, last state and history.

Everything lives in one config directory (platformdirs user config dir `convex-console`,
or `--config-dir`, or `$CONVEX_CONSOLE_CONFIG_DIR`):

    profiles.toml   default_profile, [profiles.NAME], [keys]       (no secrets)
    secrets.toml    [secrets] NAME = "key"                         (0600, directory 0700)
    state.json      last screen/table/filters/sort per profile
    history.sqlite3 function runs and tokens, bounded              (0600)

A profile's key comes from `admin_key_env = "VAR"` (the variable's name is stored) or
`admin_key_file = "ENTRY"` (an entry of secrets.toml). An inline `admin_key` is read but never
written.
"""

from __future__ import annotations

import datetime
import json
import os
import re
import sqlite3
import stat
import tempfile
import time
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Mapping

from console.connection import Connection, Credential, InvalidConnection

APP_NAME = "convex-console"
CONFIG_DIR_ENV = "CONVEX_CONSOLE_CONFIG_DIR"
PROFILES_FILE = "profiles.toml"
SECRETS_FILE = "secrets.toml"
STATE_FILE = "state.json"
HISTORY_FILE = "history.sqlite3"
_PROFILE_NAME = re.compile(r"^[A-Za-z0-9_-]{1,64}$")


class ProfileError(ValueError):
    """A profile that cannot be used; one line, safe to show."""


def config_dir(override: str | os.PathLike | None = None) -> Path:
    """`override`, else `$CONVEX_CONSOLE_CONFIG_DIR`, else the platform's user config dir."""
    if override:
        return Path(override).expanduser()
    if os.environ.get(CONFIG_DIR_ENV):
        return Path(os.environ[CONFIG_DIR_ENV]).expanduser()
    import platformdirs

    return Path(platformdirs.user_config_dir(APP_NAME))


# ---------------------------------------------------------------------------
# Minimal TOML writer for our flat shapes (tomllib only reads)


_BARE_KEY = re.compile(r"^[A-Za-z0-9_-]+$")


def _toml_key(key: str) -> str:
    return key if _BARE_KEY.match(key) else _toml_string(key)


def _toml_string(text: str) -> str:
    # JSON string escapes (\" \\ \n \t \uXXXX ...) are all valid TOML basic-string escapes.
    return json.dumps(text, ensure_ascii=False).replace("\u007f", "\\u007f")


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return repr(value) if value == value and value not in (float("inf"), float("-inf")) else "nan"
    if isinstance(value, str):
        return _toml_string(value)
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_toml_value(item) for item in value) + "]"
    if isinstance(value, Mapping):  # inside a list: an inline table
        return "{" + ", ".join(f"{_toml_key(k)} = {_toml_value(v)}" for k, v in value.items()) + "}"
    if isinstance(value, (datetime.datetime, datetime.date, datetime.time)):  # kept from a user's file
        return value.isoformat()
    raise TypeError(f"Cannot write {type(value).__name__} to TOML")


def dump_toml(data: Mapping[str, Any]) -> str:
    """Scalars and lists at the top, then tables (nested one or two levels, as ours are)."""
    lines: list[str] = []
    tables: list[tuple[list[str], Mapping[str, Any]]] = []
    for key, value in data.items():
        if isinstance(value, Mapping):
            tables.append(([key], value))
        elif value is not None:
            lines.append(f"{_toml_key(key)} = {_toml_value(value)}")
    while tables:
        path, table = tables.pop(0)
        scalars = [(k, v) for k, v in table.items() if not isinstance(v, Mapping) and v is not None]
        children = [(path + [k], v) for k, v in table.items() if isinstance(v, Mapping)]
        if scalars or not children:
            lines.append("")
            lines.append("[" + ".".join(_toml_key(part) for part in path) + "]")
            lines += [f"{_toml_key(k)} = {_toml_value(v)}" for k, v in scalars]
        tables[0:0] = children
    return "\n".join(lines).lstrip("\n") + "\n"


def _write_file(path: Path, text: str, *, private: bool) -> None:
    """Atomic write; a private file is created 0600 (never briefly world-readable)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")  # mkstemp: 0600
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as file:
            file.write(text)
        if not private:
            os.chmod(temp, 0o644)
        os.replace(temp, path)
    except BaseException:
        Path(temp).unlink(missing_ok=True)
        raise


def _read_toml(path: Path) -> dict:
    try:
        with path.open("rb") as file:
            return tomllib.load(file)
    except FileNotFoundError:
        return {}
    except tomllib.TOMLDecodeError as exc:
        raise ProfileError(f"{path} is not valid TOML: {exc}") from None


# ---------------------------------------------------------------------------
# Profiles


@dataclass
class Profile:
    name: str
    url: str
    site_url: str | None = None
    admin_key_env: str | None = None  # name of an environment variable holding the key
    admin_key_file: str | None = None  # entry name in secrets.toml
    credential_kind: str = "admin_key"  # or "deploy_key" (both sent as `Convex <key>`)
    kind: str | None = None  # cloud / self-hosted / local / emulator; guessed when None
    inline_key: str | None = field(default=None, repr=False)  # read from old files, never written

    @classmethod
    def from_toml(cls, name: str, data: Mapping[str, Any]) -> "Profile":
        if not isinstance(data, Mapping) or not isinstance(data.get("url"), str):
            raise ProfileError(f"Profile {name!r} needs a url")
        return cls(
            name=name,
            url=data["url"],
            site_url=data.get("site_url"),
            admin_key_env=data.get("admin_key_env"),
            admin_key_file=data.get("admin_key_file"),
            credential_kind=data.get("credential_kind", "admin_key"),
            kind=data.get("kind"),
            inline_key=data.get("admin_key"),
        )

    def to_toml(self) -> dict[str, Any]:
        data = {
            "url": self.url,
            "site_url": self.site_url,
            "admin_key_env": self.admin_key_env,
            "admin_key_file": self.admin_key_file,
            "credential_kind": None if self.credential_kind == "admin_key" else self.credential_kind,
            "kind": self.kind,
        }
        return {k: v for k, v in data.items() if v is not None}

    @property
    def key_source(self) -> str:
        """Where the key comes from, for display: `$VAR`, `secrets.toml`, `inline`, `none`."""
        if self.admin_key_env:
            return f"${self.admin_key_env}"
        if self.admin_key_file:
            return SECRETS_FILE
        return "inline" if self.inline_key else "none"


@dataclass
class Config:
    default_profile: str | None = None
    profiles: dict[str, Profile] = field(default_factory=dict)
    keys: dict[str, str] = field(default_factory=dict)  # binding id -> key string
    extra: dict[str, Any] = field(default_factory=dict)  # other top-level tables, kept on save


def clauses_to_state(clauses: Iterable[Any]) -> list[dict]:
    """client.FilterClause list -> JSON-able dicts to keep in a last state."""
    from console import values

    out = []
    for clause in clauses:
        value = clause.value if clause.op in ("type", "notype") else values.encode(clause.value)
        out.append({"field": clause.field, "op": clause.op, "value": value, "enabled": clause.enabled})
    return out


def clauses_from_state(items: Iterable[Mapping[str, Any]]) -> list[Any]:
    """The inverse of clauses_to_state; skips entries that no longer parse."""
    from console import values
    from console.client import FilterClause

    clauses = []
    for item in items:
        try:
            op = item["op"]
            value = item.get("value") if op in ("type", "notype") else values.decode(item.get("value"), allow_undefined=True)
            clauses.append(FilterClause(item["field"], op, value, bool(item.get("enabled", True))))
        except (KeyError, TypeError, ValueError):
            continue
    return clauses


class Settings:
    """The config directory: profiles, secrets, key bindings, last state, history.

    `profile` / `state_key` say whose last state the UI reads and writes.
    """

    def __init__(self, directory: str | os.PathLike | None = None):
        self.directory = config_dir(directory)
        self.profile: str | None = None  # the profile in use, if any
        self.origin: str | None = None  # how the connection was chosen
        self.state_key: str = "default"
        self._history: History | None = None

    # -- paths --------------------------------------------------------------

    @property
    def profiles_path(self) -> Path:
        return self.directory / PROFILES_FILE

    @property
    def secrets_path(self) -> Path:
        return self.directory / SECRETS_FILE

    @property
    def state_path(self) -> Path:
        return self.directory / STATE_FILE

    def _ensure_dir(self, *, private: bool = False) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        if private:
            os.chmod(self.directory, 0o700)

    # -- profiles -----------------------------------------------------------

    def load(self) -> Config:
        data = _read_toml(self.profiles_path)
        profiles = {}
        for name, entry in (data.get("profiles") or {}).items():
            profiles[name] = Profile.from_toml(name, entry)
        keys = {str(k): str(v) for k, v in (data.get("keys") or {}).items() if isinstance(v, str)}
        default = data.get("default_profile")
        extra = {k: v for k, v in data.items() if k not in ("profiles", "keys", "default_profile")}
        return Config(default if isinstance(default, str) else None, profiles, keys, extra)

    def save(self, config: Config) -> None:
        data: dict[str, Any] = dict(config.extra)
        data["default_profile"] = config.default_profile
        data["keys"] = dict(config.keys)
        data["profiles"] = {name: p.to_toml() for name, p in config.profiles.items()}
        self._ensure_dir()
        _write_file(self.profiles_path, dump_toml(data), private=False)

    @property
    def keys(self) -> dict[str, str]:
        """Key remapping from `[keys]`: binding id -> key string."""
        return self.load().keys

    def get_profile(self, name: str) -> Profile:
        config = self.load()
        if name not in config.profiles:
            known = ", ".join(sorted(config.profiles)) or "none saved"
            raise ProfileError(f"No profile named {name!r} (known: {known})")
        return config.profiles[name]

    def save_profile(self, profile: Profile, *, secret: str | None = None, make_default: bool = False) -> None:
        """Add or replace a profile. With `secret`, the key goes to secrets.toml (0600)."""
        if not _PROFILE_NAME.match(profile.name):
            raise ProfileError(f"Profile name {profile.name!r}: use letters, digits, '-' or '_' (at most 64)")
        Connection.create(profile.url, site_url=profile.site_url)  # validates, raises one line
        if secret is not None:
            Credential.admin_key(secret)  # validates the key's characters
            profile.admin_key_file = profile.admin_key_file or profile.name
            profile.admin_key_env = None
            self.set_secret(profile.admin_key_file, secret)
        profile.inline_key = None
        config = self.load()
        config.profiles[profile.name] = profile
        if make_default or config.default_profile is None:
            config.default_profile = profile.name
        self.save(config)

    def delete_profile(self, name: str) -> None:
        config = self.load()
        profile = config.profiles.pop(name, None)
        if profile is None:
            return
        if config.default_profile == name:
            config.default_profile = None
        self.save(config)
        if profile.admin_key_file and all(p.admin_key_file != profile.admin_key_file for p in config.profiles.values()):
            self.delete_secret(profile.admin_key_file)
        states = self._load_states()
        if states.pop(name, None) is not None:
            self._save_states(states)

    def set_default(self, name: str | None) -> None:
        config = self.load()
        if name is not None and name not in config.profiles:
            raise ProfileError(f"No profile named {name!r}")
        config.default_profile = name
        self.save(config)

    def set_key_binding(self, binding_id: str, key: str | None) -> None:
        config = self.load()
        if key is None:
            config.keys.pop(binding_id, None)
        else:
            config.keys[binding_id] = key
        self.save(config)

    def connection_for(self, profile: Profile | str, environ: Mapping[str, str] | None = None) -> Connection:
        """The Connection a profile describes; raises ProfileError when its key is missing."""
        if isinstance(profile, str):
            profile = self.get_profile(profile)
        secret = self._profile_secret(profile, os.environ if environ is None else environ)
        options: dict[str, Any] = {"site_url": profile.site_url, "kind": profile.kind}
        if secret:
            options["deploy_key" if profile.credential_kind == "deploy_key" else "admin_key"] = secret
        try:
            return Connection.create(profile.url, **options)
        except InvalidConnection as exc:
            raise ProfileError(f"Profile {profile.name!r}: {exc}") from None

    def _profile_secret(self, profile: Profile, environ: Mapping[str, str]) -> str | None:
        if profile.admin_key_env:
            value = environ.get(profile.admin_key_env)
            if not value:
                raise ProfileError(f"Profile {profile.name!r}: environment variable {profile.admin_key_env} is not set")
            return value
        if profile.admin_key_file:
            value = self.secrets().get(profile.admin_key_file)
            if not value:
                raise ProfileError(f"Profile {profile.name!r}: no entry {profile.admin_key_file!r} in {self.secrets_path}")
            return value
        return profile.inline_key

    # -- secrets ------------------------------------------------------------

    def secrets(self) -> dict[str, str]:
        data = _read_toml(self.secrets_path).get("secrets") or {}
        return {str(k): str(v) for k, v in data.items() if isinstance(v, str)}

    def set_secret(self, entry: str, secret: str) -> None:
        current = self.secrets()
        current[entry] = secret
        self._write_secrets(current)

    def delete_secret(self, entry: str) -> None:
        current = self.secrets()
        if current.pop(entry, None) is not None:
            self._write_secrets(current)

    def _write_secrets(self, secrets: Mapping[str, str]) -> None:
        self._ensure_dir(private=True)
        header = "# Convex Console keys. Keep this file private (mode 0600).\n"
        _write_file(self.secrets_path, header + dump_toml({"secrets": dict(secrets)}), private=True)

    # -- last state ---------------------------------------------------------

    def _load_states(self) -> dict:
        try:
            data = json.loads(self.state_path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return {}
        return data if isinstance(data, dict) else {}

    def _save_states(self, states: Mapping[str, Any]) -> None:
        self._ensure_dir()
        _write_file(self.state_path, json.dumps(states, indent=1, sort_keys=True), private=False)

    def load_state(self, key: str | None = None) -> dict:
        """The last state saved under `key` (default: `state_key`): a JSON dict the UI owns,
        e.g. {"screen": "data", "table": "posts", "queries": {...}}; {} when none."""
        state = self._load_states().get(key or self.state_key)
        return dict(state) if isinstance(state, dict) else {}

    def save_state(self, key: str | None, state: Mapping[str, Any]) -> None:
        states = self._load_states()
        states[key or self.state_key] = dict(state)
        self._save_states(states)

    # -- history ------------------------------------------------------------

    @property
    def history(self) -> "History":
        if self._history is None:
            self._ensure_dir()
            self._history = History(self.directory / HISTORY_FILE)
        return self._history

    def close(self) -> None:
        if self._history is not None:
            self._history.close()
            self._history = None


def file_mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


# ---------------------------------------------------------------------------
# History


@dataclass
class FunctionRun:
    id: int
    deployment: str
    at: float  # unix seconds
    path: str
    kind: str
    args: Any  # convex_encoded_json of the args (decode with values.decode)
    status: str
    result: Any  # encoded value or error data
    error: str | None
    elapsed_ms: float
    identity: str | None  # "admin", "acting as …", "token"


@dataclass
class TokenEntry:
    id: int
    at: float
    token: str = field(repr=False)
    label: str | None = None


class History:
    """A small SQLite store (0600), written as things happen, bounded per deployment."""

    def __init__(self, path: str | os.PathLike, *, max_runs: int = 500, max_tokens: int = 50):
        self.path = Path(path)
        self.max_runs = max_runs
        self.max_tokens = max_tokens
        self.path.parent.mkdir(parents=True, exist_ok=True)
        if not self.path.exists():
            os.close(os.open(self.path, os.O_CREAT | os.O_WRONLY, 0o600))
        self._db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
        self._db.executescript(
            """
            PRAGMA journal_mode=WAL;
            CREATE TABLE IF NOT EXISTS function_runs (
                id INTEGER PRIMARY KEY AUTOINCREMENT, deployment TEXT NOT NULL, at REAL NOT NULL,
                path TEXT NOT NULL, kind TEXT NOT NULL, args TEXT NOT NULL, status TEXT NOT NULL,
                result TEXT, error TEXT, elapsed_ms REAL NOT NULL, identity TEXT);
            CREATE INDEX IF NOT EXISTS runs_by_deployment ON function_runs (deployment, id);
            CREATE TABLE IF NOT EXISTS tokens (
                id INTEGER PRIMARY KEY AUTOINCREMENT, at REAL NOT NULL, token TEXT NOT NULL UNIQUE, label TEXT);
            """
        )

    def close(self) -> None:
        self._db.close()

    def add_run(self, deployment: str, path: str, kind: str, args: Any, status: str, *, result: Any = None,
                error: str | None = None, elapsed_ms: float = 0.0, identity: str | None = None) -> int:
        """Record one call; `args` / `result` are JSON-able (pass convex_encoded_json)."""
        cursor = self._db.execute(
            "INSERT INTO function_runs (deployment, at, path, kind, args, status, result, error, elapsed_ms, identity)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (deployment, time.time(), path, kind, json.dumps(args), status, json.dumps(result), error, elapsed_ms, identity),
        )
        self._db.execute(
            "DELETE FROM function_runs WHERE deployment = ? AND id NOT IN"
            " (SELECT id FROM function_runs WHERE deployment = ? ORDER BY id DESC LIMIT ?)",
            (deployment, deployment, self.max_runs),
        )
        return int(cursor.lastrowid)

    def runs(self, deployment: str, *, path: str | None = None, limit: int = 100) -> list[FunctionRun]:
        """Newest first."""
        sql = "SELECT * FROM function_runs WHERE deployment = ?"
        params: list[Any] = [deployment]
        if path:
            sql += " AND path = ?"
            params.append(path)
        rows = self._db.execute(sql + " ORDER BY id DESC LIMIT ?", (*params, limit)).fetchall()
        return [
            FunctionRun(r[0], r[1], r[2], r[3], r[4], json.loads(r[5]), r[6], json.loads(r[7]) if r[7] else None, r[8], r[9], r[10])
            for r in rows
        ]

    def add_token(self, token: str, label: str | None = None) -> None:
        self._db.execute(
            "INSERT INTO tokens (at, token, label) VALUES (?, ?, ?)"
            " ON CONFLICT(token) DO UPDATE SET at = excluded.at, label = COALESCE(excluded.label, tokens.label)",
            (time.time(), token, label),
        )
        self._db.execute(
            "DELETE FROM tokens WHERE id NOT IN (SELECT id FROM tokens ORDER BY at DESC LIMIT ?)", (self.max_tokens,)
        )

    def tokens(self, *, limit: int = 50) -> list[TokenEntry]:
        rows = self._db.execute("SELECT id, at, token, label FROM tokens ORDER BY at DESC LIMIT ?", (limit,)).fetchall()
        return [TokenEntry(*row) for row in rows]

    def clear(self) -> None:
        self._db.execute("DELETE FROM function_runs")
        self._db.execute("DELETE FROM tokens")
