"""Deployment environment variables (PROTOCOL §3.7).

Stored in the private system table `_environment_variables` `{name, value}` (so they persist
with the data directory and every change is an engine commit), mirrored in
`deployment.env_vars` (what `ctx.env` reads). Served as:
- `GET /api/list_environment_variables`, `POST /api/update_environment_variables` (and /api/v1/);
- `_system/cli/queryEnvironmentVariables` (+ `:get`), `_system/frontend/listEnvironmentVariables`.

A change invalidates every subscription: the commit advances the timestamp, then each sync
connection's query set is marked dirty (`QuerySet.invalidate_all`), because a query's read
set cannot see `ctx.env`.
"""

from __future__ import annotations

import re
import threading

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from console.emulator.errors import ApiError
from console.emulator.functions import query
from console.emulator.validators import v

TABLE = "_environment_variables"
ENV_VAR_LIMIT = 100
MAX_NAME_LENGTH = 40
MAX_VALUE_LENGTH = 8 * 1024
BUILT_IN = ("CONVEX_CLOUD_URL", "CONVEX_SITE_URL")
_NAME = re.compile(r"^[a-zA-Z_]+[a-zA-Z0-9_]*$")
_SCAN = {"source": {"type": "FullTableScan", "tableName": TABLE, "order": "asc"}, "operators": []}
_lock = threading.Lock()


# --- validation (Convex's messages: common/src/types/environment_variables.rs) -------------


def check_name(name: object) -> str:
    if not isinstance(name, str) or not _NAME.match(name):
        raise ApiError(
            400, "EnvironmentVariableNameInvalid",
            f"The environment variable name {name} is invalid. Environment variable names must begin "
            "with a letter and may only include characters a-z, A-Z, 0-9, and underscores.",
        )
    if len(name) > MAX_NAME_LENGTH:
        raise ApiError(
            400, "EnvironmentVariableNameTooLong",
            f"The environment variable name {name} is too long. Environment variable names must be "
            f"less than {MAX_NAME_LENGTH}.",
        )
    return name


def check_value(value: object) -> str:
    if not isinstance(value, str):
        raise ApiError(400, "BadJsonBody", "Failed to deserialize the JSON body into the target type: "
                       "changes: value: invalid type, expected a string")
    size = len(value.encode("utf-8"))
    if size > MAX_VALUE_LENGTH:
        raise ApiError(
            400, "EnvironmentVariableValueTooLarge",
            f"The environment variable value is {size} bytes, which is too large. (max size: {MAX_VALUE_LENGTH}",
        )
    return value


def parse_changes(body: object) -> list[tuple[str, str | None]]:
    """`{"changes":[{name, value?}]}` -> [(name, value | None)], validated, in order."""
    if not isinstance(body, dict) or not isinstance(body.get("changes"), list):
        raise ApiError(400, "BadJsonBody", "Failed to deserialize the JSON body into the target type: "
                       "missing field `changes`")
    changes: list[tuple[str, str | None]] = []
    for item in body["changes"]:
        if not isinstance(item, dict) or "name" not in item:
            raise ApiError(400, "BadJsonBody", "Failed to deserialize the JSON body into the target type: "
                           "changes: missing field `name`")
        name = check_name(item["name"])
        value = item.get("value")
        changes.append((name, None if value is None else check_value(value)))
    names = [name for name, _ in changes]
    if len(set(names)) != len(names):
        raise ApiError(400, "EnvVarNameNotUnique", "One or more environment variable name is not unique")
    for name in names:
        if name in BUILT_IN:
            raise ApiError(400, "EnvVarNameForbidden",
                           f'Environment variable with name "{name}" is built-in and cannot be overridden')
    return changes


# --- storage -----------------------------------------------------------------------------


def ensure_table(db) -> None:
    db.define_system_table(TABLE, [])


def load(db) -> dict[str, str]:
    return {doc["name"]: doc["value"] for doc in db.read(lambda tx: tx.collect(_SCAN))}


def documents(db) -> list[dict]:
    return db.read(lambda tx: tx.collect(_SCAN))


def apply_changes(deployment, changes: list[tuple[str, str | None]]) -> int:
    """Write the changes in one transaction; returns its commit timestamp."""

    def write(tx):
        by_name = {doc["name"]: doc for doc in tx.collect(_SCAN)}
        for name, value in changes:
            existing = by_name.get(name)
            if value is None:
                if existing is not None:
                    tx.remove(existing["_id"], table=TABLE)
                    del by_name[name]
            elif existing is None:
                if len(by_name) >= ENV_VAR_LIMIT:
                    raise ApiError(400, "EnvVarLimitMet",
                                   f"The environment variable limit ({ENV_VAR_LIMIT}) has been met.")
                tx.insert(TABLE, {"name": name, "value": value}, system=True)
                by_name[name] = {"name": name}
            elif existing["value"] != value:
                tx.shallow_merge(existing["_id"], {"value": value}, table=TABLE)

    with _lock:
        _, commit_ts = deployment.db.write(write)
        deployment.env_vars.clear()
        deployment.env_vars.update(load(deployment.db))
    return commit_ts


def invalidate_subscriptions(deployment, commit_ts: int | None) -> int:
    """Mark every live subscription dirty; returns how many connections were told.
    Must run on the sync server's event loop (the HTTP handler's loop is the same)."""
    hub = deployment.extras.get("sync")
    return hub.invalidate_all(commit_ts) if hub is not None else 0


def install(deployment) -> None:
    """Create the table, load the stored variables, expose the built-in URLs to functions."""
    if deployment.extras.get("environment"):
        return
    ensure_table(deployment.db)
    deployment.env_vars.update(load(deployment.db))
    runner = deployment.runner
    user_vars = deployment.env_vars

    def provider() -> dict:
        found = {}
        if deployment.cloud_url:
            found["CONVEX_CLOUD_URL"] = deployment.cloud_url
        if deployment.site_url:
            found["CONVEX_SITE_URL"] = deployment.site_url
        found.update(user_vars)
        return found

    runner.env_provider = provider
    deployment.extras["environment"] = True


# --- system functions ----------------------------------------------------------------------


def modules(deployment) -> dict:
    install(deployment)
    db = deployment.db

    @query(args={})
    def queryEnvironmentVariables(ctx, args):  # noqa: N802 - Convex's name
        return documents(db)

    @query(args={"name": v.string()})
    def get(ctx, args):
        for doc in documents(db):
            if doc["name"] == args["name"]:
                return {"name": doc["name"], "value": doc["value"]}
        return None

    @query(args={})
    def listEnvironmentVariables(ctx, args):  # noqa: N802
        return documents(db)

    return {
        "_system/cli/queryEnvironmentVariables": {"default": queryEnvironmentVariables, "get": get},
        "_system/frontend/listEnvironmentVariables": {"default": listEnvironmentVariables},
    }


# --- HTTP endpoints (cloud port) --------------------------------------------------------------


def routes(deployment) -> list[Route]:
    from starlette.concurrency import run_in_threadpool

    from console.emulator import http_api

    async def list_variables(request: Request) -> Response:
        await http_api.require_admin(request)
        return JSONResponse({"environmentVariables": dict(sorted(deployment.env_vars.items()))})

    async def update_variables(request: Request) -> Response:
        await http_api.require_admin(request)
        changes = parse_changes(await http_api.read_json(request))
        commit_ts = await run_in_threadpool(apply_changes, deployment, changes)
        invalidate_subscriptions(deployment, commit_ts)
        return Response(status_code=200)

    result = []
    for prefix in ("/api", "/api/v1"):
        result.append(Route(f"{prefix}/list_environment_variables", list_variables, methods=["GET"]))
        result.append(Route(f"{prefix}/update_environment_variables", update_variables, methods=["POST"]))
    return result
