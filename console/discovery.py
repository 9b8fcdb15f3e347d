"""Find the Convex deployments a developer is working with (PROTOCOL §7).

Order (first found is the best guess; every result says where it came from):
1. `CONVEX_SELF_HOSTED_URL` + `CONVEX_SELF_HOSTED_ADMIN_KEY`
2. `CONVEX_DEPLOYMENT` of type local/anonymous -> `.convex/local/default/config.json`, then the
   legacy `~/.convex/{convex-backend-state|anonymous-convex-backend-state}/<name>/config.json`
3. `CONVEX_DEPLOY_KEY` (or `CONVEX_DEPLOYMENT_TOKEN`) with a `*CONVEX_URL` variable
4. a `*CONVEX_URL` variable alone (no key)
Each variable is looked up in the process environment, then `.env.local`, then `.env`
(dotenv does not override variables that are already set).
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, Mapping

from console.connection import Connection, InvalidConnection

ENV_FILES = (".env.local", ".env")
URL_NAMES = (
    "CONVEX_URL",
    "PUBLIC_CONVEX_URL",
    "NEXT_PUBLIC_CONVEX_URL",
    "VITE_CONVEX_URL",
    "REACT_APP_CONVEX_URL",
    "EXPO_PUBLIC_CONVEX_URL",
)


@dataclass(frozen=True)
class Discovered:
    connection: Connection
    source: str  # e.g. "CONVEX_SELF_HOSTED_URL in .env.local"

    @property
    def origin(self) -> str:
        return f"discovered from {self.source}"


@dataclass(frozen=True)
class _Var:
    value: str
    where: str  # "the environment", ".env.local", ".env"


# ---------------------------------------------------------------------------
# dotenv


_LINE = re.compile(r"^\s*(?:export\s+)?([A-Za-z_][A-Za-z0-9_.-]*)\s*=\s*(.*)$")
_ESCAPES = {"n": "\n", "r": "\r", "t": "\t", '"': '"', "\\": "\\"}


def parse_dotenv(text: str) -> dict[str, str]:
    """dotenv syntax: comments, `export`, single/double quotes (double: escapes, multi-line)."""
    result: dict[str, str] = {}
    lines = text.replace("\r\n", "\n").split("\n")
    index = 0
    while index < len(lines):
        match = _LINE.match(lines[index])
        index += 1
        if not match:
            continue
        name, rest = match.group(1), match.group(2)
        quote = rest[:1]
        if quote in ("'", '"', "`"):
            body = rest[1:]
            while _closing_quote(body, quote) < 0 and index < len(lines):
                body += "\n" + lines[index]
                index += 1
            end = _closing_quote(body, quote)
            value = body[:end] if end >= 0 else body
            result[name] = _unescape(value) if quote == '"' else value
        else:
            result[name] = re.split(r"\s+#", rest, maxsplit=1)[0].strip()
    return result


def _closing_quote(body: str, quote: str) -> int:
    escaped = False
    for position, char in enumerate(body):
        if escaped:
            escaped = False
        elif char == "\\" and quote == '"':
            escaped = True
        elif char == quote:
            return position
    return -1


def _unescape(value: str) -> str:
    return re.sub(r"\\(.)", lambda m: _ESCAPES.get(m.group(1), "\\" + m.group(1)), value)


def read_env_files(directory: Path) -> list[tuple[str, dict[str, str]]]:
    files = []
    for name in ENV_FILES:
        path = directory / name
        try:
            files.append((name, parse_dotenv(path.read_text(encoding="utf-8"))))
        except (OSError, UnicodeDecodeError):
            continue
    return files


class _Env:
    """Variable lookup: environment first, then .env.local, then .env."""

    def __init__(self, environ: Mapping[str, str], files: list[tuple[str, dict[str, str]]]):
        self._layers = [("the environment", dict(environ))] + files

    def get(self, name: str) -> _Var | None:
        for where, layer in self._layers:
            value = layer.get(name)
            if value:
                return _Var(value.strip(), where)
        return None

    def convex_urls(self) -> list[tuple[str, _Var]]:
        """Every `*CONVEX_URL` variable, known names first."""
        names = list(URL_NAMES)
        for _, layer in self._layers:
            names += sorted(n for n in layer if n.endswith("CONVEX_URL") and n not in names)
        found = []
        for name in names:
            var = self.get(name)
            if var:
                found.append((name, var))
        return found

    def site_url(self, url_var_name: str) -> _Var | None:
        return self.get(url_var_name.removesuffix("CONVEX_URL") + "CONVEX_SITE_URL")


# ---------------------------------------------------------------------------
# Discovery


def discover(
    cwd: str | os.PathLike | None = None,
    *,
    environ: Mapping[str, str] | None = None,
    home: str | os.PathLike | None = None,
) -> list[Discovered]:
    """Every deployment found, best first, without duplicates (by URL)."""
    directory = Path(cwd) if cwd is not None else Path.cwd()
    env = _Env(os.environ if environ is None else environ, read_env_files(directory))
    home_dir = Path(home) if home is not None else Path.home()
    found: list[Discovered] = []
    for step in (_self_hosted, _local_deployment, _deploy_key, _url_only):
        for item in step(env, directory, home_dir):
            if all(item.connection.url != other.connection.url for other in found):
                found.append(item)
    return found


def _make(url: str, source: str, **options) -> Discovered | None:
    try:
        return Discovered(Connection.create(url, **options), source)
    except InvalidConnection:
        return None


def _self_hosted(env: _Env, _directory: Path, _home: Path) -> list[Discovered]:
    url = env.get("CONVEX_SELF_HOSTED_URL")
    if not url:
        return []
    key = env.get("CONVEX_SELF_HOSTED_ADMIN_KEY")
    item = _make(url.value, f"CONVEX_SELF_HOSTED_URL in {url.where}", admin_key=key.value if key else None)
    return [item] if item else []


def split_deployment(value: str) -> tuple[str | None, str]:
    """`local:local-team-project # comment` -> ("local", "local-team-project"); no prefix -> (None, name)."""
    value = value.split("#", 1)[0].strip()
    kind, colon, name = value.partition(":")
    return (kind, name) if colon else (None, value)


def _local_deployment(env: _Env, directory: Path, home: Path) -> list[Discovered]:
    var = env.get("CONVEX_DEPLOYMENT")
    if not var:
        return []
    kind, name = split_deployment(var.value)
    if kind not in ("local", "anonymous"):
        return []
    state_dir = "convex-backend-state" if kind == "local" else "anonymous-convex-backend-state"
    project = ".convex/local/default/config.json"
    legacy = f".convex/{state_dir}/{name}/config.json"
    candidates = [(directory / project, project, True), (home / legacy, f"~/{legacy}", False)]
    for path, shown, is_project in candidates:
        config = _read_config(path)
        if config is None:
            continue
        named = config.get("deploymentName")
        if named and named != name and is_project:
            continue  # the project-local config belongs to another deployment
        item = _from_local_config(config, kind, name, shown, var.where)
        if item:
            return [item]
    return []


def _read_config(path: Path) -> dict | None:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def _from_local_config(config: dict, kind: str, name: str, shown: str, where: str) -> Discovered | None:
    ports = config.get("ports") or {}
    cloud, site = ports.get("cloud"), ports.get("site")
    if not isinstance(cloud, int):
        return None
    return _make(
        f"http://127.0.0.1:{cloud}",
        f"{shown} (CONVEX_DEPLOYMENT={kind}:{name} in {where})",
        site_url=f"http://127.0.0.1:{site}" if isinstance(site, int) else None,
        admin_key=config.get("adminKey") or None,
        kind="local",
        deployment_name=config.get("deploymentName") or name,
        deployment_type=kind,
    )


def _deploy_key(env: _Env, _directory: Path, _home: Path) -> list[Discovered]:
    key = env.get("CONVEX_DEPLOY_KEY") or env.get("CONVEX_DEPLOYMENT_TOKEN")
    if not key:
        return []
    found = []
    for name, url in env.convex_urls():
        site = env.site_url(name)
        item = _make(url.value, f"CONVEX_DEPLOY_KEY in {key.where} with {name} in {url.where}",
                     deploy_key=key.value, site_url=site.value if site else None)
        if item:
            found.append(item)
    if not found:
        guessed = _url_from_deploy_key(key.value)
        item = guessed and _make(guessed, f"CONVEX_DEPLOY_KEY in {key.where} (URL guessed from the key)", deploy_key=key.value)
        if item:
            found.append(item)
    return found


def _url_from_deploy_key(key: str) -> str | None:
    """`prod:happy-otter-123|...` -> https://happy-otter-123.convex.cloud (custom domains differ)."""
    head = key.partition("|")[0]
    kind, colon, name = head.partition(":")
    if colon and kind in ("prod", "dev") and re.fullmatch(r"[a-z0-9-]+", name):
        return f"https://{name}.convex.cloud"
    return None


def _url_only(env: _Env, _directory: Path, _home: Path) -> list[Discovered]:
    deployment = env.get("CONVEX_DEPLOYMENT")
    dtype = split_deployment(deployment.value)[0] if deployment else None
    found = []
    for name, url in env.convex_urls():
        site = env.site_url(name)
        item = _make(url.value, f"{name} in {url.where}", site_url=site.value if site else None,
                     deployment_type=dtype if dtype in ("dev", "prod", "preview") else None)
        if item:
            found.append(item)
    return found


# ---------------------------------------------------------------------------
# Verification


VerifyStatus = Literal["ok", "bad_key", "unreachable", "not_convex"]
_INSTANCE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,127}$")


@dataclass(frozen=True)
class Verification:
    status: VerifyStatus
    message: str  # one line, safe to show (no secrets)
    instance_name: str | None = None
    read_only: bool = False

    @property
    def ok(self) -> bool:
        return self.status == "ok"


async def verify(connection: Connection, *, timeout: float = 5.0) -> Verification:
    """GET /instance_name, then /api/check_admin_key when there is a key (that answer decides:
    a proxy may not serve /instance_name), else POST /api/query_ts as the proof of Convex."""
    from console.client import ApiError, AuthError, BadResponse, DeploymentClient, Unreachable

    async with DeploymentClient(connection, timeout=timeout) as client:
        name: str | None = None
        problem = ""
        try:
            name = await client.instance_name()
            if not _INSTANCE_NAME.match(name):
                name, problem = None, "/instance_name is not a deployment name"
        except Unreachable as exc:
            return Verification("unreachable", str(exc))
        except (BadResponse, ApiError) as exc:
            problem = f"/instance_name: {_short(exc)}"
        label = name or connection.display_name
        try:
            if connection.credential.secret:
                check = await client.check_admin_key()
                mode = "read-only key" if check.is_read_only else "admin key accepted"
                return Verification("ok", f"{label}: {mode}", name, check.is_read_only)
            if name is None:
                await client.query_ts()
            return Verification("ok", f"{label} is reachable; no admin key (public functions only)", name)
        except AuthError as exc:
            return Verification("bad_key", f"{label} refused the key {connection.display_credential} ({exc.code})", name)
        except Unreachable as exc:
            return Verification("unreachable", str(exc), name)
        except (BadResponse, ApiError, KeyError, TypeError, ValueError) as exc:
            detail = problem or _short(exc)
            return Verification("not_convex", f"{connection.url} does not answer like a Convex deployment ({detail})", name)


def _short(exc: Exception) -> str:
    return str(exc).splitlines()[0][:120]
