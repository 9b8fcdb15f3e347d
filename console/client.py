"""Async client for a Convex deployment's HTTP API (PROTOCOL §1, §3).

It speaks only the public protocol, so it works against Convex Cloud, a self-hosted or local
backend, and our emulator alike. Values travel as `convex_encoded_json` and come back decoded
(console.values). One `httpx.AsyncClient` per `DeploymentClient`; views made with
`with_identity` / `with_token` / `with_auth` share it.

Errors: FunctionError (the function ran and failed), ApiError / AuthError (a non-function HTTP
error with Convex's `code` and `message`), Unreachable (nothing answered), BadResponse (something
answered that is not a Convex deployment).
"""

from __future__ import annotations

import asyncio
import base64
import functools
import json
import sys
import time
from dataclasses import dataclass, field
from typing import Any, AsyncIterator, Iterable, Literal, Mapping, Sequence

# httpx imports its command-line tool (click, pygments, rich.syntax) at import time whenever click
# is installed; the console never runs `httpx.main`, so keep that out (~40 ms of start-up). httpx
# then defines a stub `main` that explains what is missing.
sys.modules.setdefault("httpx._main", None)  # type: ignore[arg-type]
import httpx  # noqa: E402

from console import values
from console.client_errors import (  # noqa: F401  re-exported: the public surface stays here
    _ERRNO,
    _REQUEST_ID,
    ApiError,
    AuthError,
    BadResponse,
    ClientError,
    FunctionError,
    Unreachable,
    _error_fields,
    _json_body,
    _raise_for_status,
    _root_os_error,
    _transport_reason,
)
from console.client_types import (  # noqa: F401
    AdminKeyCheck,
    FilterProblem,
    FunctionResult,
    FunctionSpec,
    IndexInfo,
    LogBatch,
    Page,
    Schemas,
    TableInfo,
)
from console.connection import Connection, Credential
from console.table_filters import (  # noqa: F401
    FILTER_OPS,
    TYPE_NAMES,
    UNDEFINED_PLACEHOLDER,
    FilterClause,
    IndexEq,
    IndexFilter,
    IndexRange,
    Order,
    SearchFilter,
    _filter_value,
    build_filter_expression,
    decode_filters,
    encode_filters,
)

FunctionKind = Literal["query", "mutation", "action", "function"]

UDF_FAILED_STATUS = 560  # PROTOCOL §1.2: clients must also accept function errors on 560
DEFAULT_TIMEOUT = 30.0
LOG_POLL_TIMEOUT = 75.0  # stream_function_logs long-polls for up to 60 s
MAX_DOCUMENTS_PER_CALL = 4096
COUNT_BY_PAGING_CAP = 5000  # a system table without a count function is counted up to this  # addDocument / deleteDocuments limit (PROTOCOL §3.1)


@functools.lru_cache(maxsize=1)
def client_version() -> str:
    """The installed distribution's version (looked up once, on first use: it costs ~25 ms)."""
    try:
        from importlib.metadata import version

        return version("convex-console")
    except Exception:  # not installed (running from a checkout)
        return "0.1.0"


def client_header() -> str:
    """`Convex-Client` value: an unrecognized client name, so we always send `format` (P§1.3)."""
    return f"convex-console-{client_version()}"


# ---------------------------------------------------------------------------
# Authentication


@dataclass(frozen=True)
class AdminAuth:
    """`Authorization: Convex <key>` or, acting as a user, `Convex <key>:<base64 JSON>`."""

    key: str = field(repr=False)
    acting_as: Mapping[str, Any] | None = None

    def header(self) -> str:
        if not self.acting_as:
            return f"Convex {self.key}"
        raw = json.dumps(dict(self.acting_as), separators=(",", ":"), ensure_ascii=False)
        return f"Convex {self.key}:{base64.b64encode(raw.encode()).decode('ascii')}"


@dataclass(frozen=True)
class BearerAuth:
    """`Authorization: Bearer <JWT>`: a user, exactly as an app's client would call."""

    token: str = field(repr=False)

    def header(self) -> str:
        return f"Bearer {self.token}"


@dataclass(frozen=True)
class NoAuth:
    def header(self) -> None:
        return None


Auth = AdminAuth | BearerAuth | NoAuth


def make_identity(subject: str, issuer: str = "https://convex-console.invalid", **claims: Any) -> dict[str, Any]:
    """UserIdentity attributes for `with_identity` (P§6.3): tokenIdentifier is `issuer|subject`;
    extra claims use the identity's camelCase names (name, email, ...) or custom names."""
    return {"subject": subject, "issuer": issuer, "tokenIdentifier": f"{issuer}|{subject}", **claims}


def auth_from_credential(credential: Credential) -> Auth:
    return AdminAuth(credential.secret) if credential.secret else NoAuth()

# ---------------------------------------------------------------------------
# The client


class _LazyTLSTransport(httpx.AsyncBaseTransport):
    """An https transport built on its first request: loading the CA bundle takes 25-40 ms,
    which a deployment on http://127.0.0.1 would otherwise pay at every start for nothing."""

    def __init__(self) -> None:
        self._transport: httpx.AsyncHTTPTransport | None = None

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if self._transport is None:
            self._transport = httpx.AsyncHTTPTransport()
        return await self._transport.handle_async_request(request)

    async def aclose(self) -> None:
        if self._transport is not None:
            await self._transport.aclose()


def _plain_http_transports() -> dict:
    """For an http:// deployment: no TLS set up front; an https URL (verified as ever) builds it."""
    return {"transport": httpx.AsyncHTTPTransport(verify=False), "mounts": {"https://": _LazyTLSTransport()}}


class DeploymentClient:
    """Calls functions and admin endpoints of one deployment.

    Use as `async with DeploymentClient(conn) as client:` or call `await client.aclose()`.
    Views from `with_identity` / `with_token` / `with_auth` / `without_auth` share the HTTP
    connection pool; closing a view does nothing, closing the original closes the pool.
    """

    def __init__(
        self,
        connection: Connection,
        *,
        timeout: float = DEFAULT_TIMEOUT,
        auth: Auth | None = None,
        _http: httpx.AsyncClient | None = None,
    ):
        self.connection = connection
        self.timeout = timeout
        self.auth: Auth = auth if auth is not None else auth_from_credential(connection.credential)
        self._owns_http = _http is None
        on_this_machine = connection.kind in ("local", "emulator")
        self._http = _http or httpx.AsyncClient(
            base_url=connection.url,
            timeout=httpx.Timeout(timeout, connect=min(timeout, 5.0)),
            headers={"Convex-Client": client_header()},
            follow_redirects=False,
            # A proxy from the environment must not capture a deployment on this machine.
            trust_env=not on_this_machine,
            **(_plain_http_transports() if on_this_machine and connection.url.startswith("http://") else {}),
        )

    # -- lifetime and views -------------------------------------------------

    async def __aenter__(self) -> "DeploymentClient":
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        if self._owns_http:
            await self._http.aclose()

    @property
    def closed(self) -> bool:
        return self._http.is_closed

    def with_auth(self, auth: Auth) -> "DeploymentClient":
        return DeploymentClient(self.connection, timeout=self.timeout, auth=auth, _http=self._http)

    def with_identity(self, identity: Mapping[str, Any]) -> "DeploymentClient":
        """Admin acting as a user with these UserIdentity attributes (tokenIdentifier, subject...)."""
        key = self.connection.credential.secret
        if not key:
            raise ValueError("Acting as an identity needs an admin or deploy key")
        return self.with_auth(AdminAuth(key, dict(identity)))

    def with_token(self, jwt: str) -> "DeploymentClient":
        token = jwt.strip()
        if not token or not token.isascii() or any(ch.isspace() for ch in token):
            raise ValueError("A token must be one word of ASCII characters")
        return self.with_auth(BearerAuth(token))

    def without_auth(self) -> "DeploymentClient":
        return self.with_auth(NoAuth())

    def as_admin(self) -> "DeploymentClient":
        return self.with_auth(auth_from_credential(self.connection.credential))

    # -- transport ----------------------------------------------------------

    def _headers(self, auth: Auth | None = None) -> dict[str, str]:
        header = (auth or self.auth).header()
        return {"Authorization": header} if header else {}

    async def _send(self, method: str, path: str, *, auth: Auth | None = None, timeout: float | None = None, **kwargs: Any) -> httpx.Response:
        url = self.connection.url + path
        if timeout is not None:
            kwargs["timeout"] = httpx.Timeout(timeout, connect=min(timeout, 5.0))
        try:
            return await self._http.request(method, path, headers=self._headers(auth), **kwargs)
        except httpx.TimeoutException as exc:
            limit = timeout or self.timeout
            what = "connecting" if isinstance(exc, httpx.ConnectTimeout) else "waiting for an answer"
            raise Unreachable(url, f"timed out after {limit:g} s {what}") from None
        except httpx.TransportError as exc:
            raise Unreachable(url, _transport_reason(exc)) from None

    async def _request_json(self, method: str, path: str, *, auth: Auth | None = None, timeout: float | None = None, **kwargs: Any) -> Any:
        response = await self._send(method, path, auth=auth, timeout=timeout, **kwargs)
        _raise_for_status(response)
        if not response.content:
            return None
        return _json_body(response)

    async def _request_text(self, method: str, path: str, **kwargs: Any) -> str:
        response = await self._send(method, path, **kwargs)
        _raise_for_status(response)
        return response.text

    # -- functions ----------------------------------------------------------

    async def run_function(
        self,
        kind: FunctionKind,
        path: str,
        args: Mapping[str, Any] | None = None,
        *,
        auth: Auth | None = None,
        component_path: str | None = None,
        timeout: float | None = None,
    ) -> FunctionResult:
        """Call a function and return its outcome; a function error is a result, not an exception."""
        if kind not in ("query", "mutation", "action", "function"):
            raise ValueError(f"Unknown function kind {kind!r}")
        body: dict[str, Any] = {"path": path, "args": values.encode(dict(args or {})), "format": "convex_encoded_json"}
        if component_path is not None:
            body["componentPath"] = component_path
        started = time.perf_counter()
        response = await self._send("POST", f"/api/{kind}", auth=auth, timeout=timeout, json=body)
        elapsed = time.perf_counter() - started
        if response.status_code not in (200, UDF_FAILED_STATUS):
            _raise_for_status(response)
            raise BadResponse(str(response.url), f"unexpected HTTP {response.status_code}", response.status_code)
        return _function_result(response, path, kind, elapsed)

    async def query(self, path: str, args: Mapping[str, Any] | None = None, **options: Any) -> Any:
        return (await self.run_function("query", path, args, **options)).raise_for_error()

    async def mutation(self, path: str, args: Mapping[str, Any] | None = None, **options: Any) -> Any:
        return (await self.run_function("mutation", path, args, **options)).raise_for_error()

    async def action(self, path: str, args: Mapping[str, Any] | None = None, **options: Any) -> Any:
        return (await self.run_function("action", path, args, **options)).raise_for_error()

    async def function(self, path: str, args: Mapping[str, Any] | None = None, **options: Any) -> Any:
        """Any function type through `/api/function` (admin only)."""
        return (await self.run_function("function", path, args, **options)).raise_for_error()

    async def _system_query(self, path: str, args: Mapping[str, Any] | None = None) -> Any:
        return await self.query(path, args, auth=self._admin_auth())

    async def _system_mutation(self, path: str, args: Mapping[str, Any] | None = None) -> Any:
        result = await self.mutation(path, args, auth=self._admin_auth())
        if isinstance(result, dict) and result.get("success") is False:
            raise FunctionError(str(result.get("error", "The deployment refused the change")), path=path)
        return result

    def _admin_auth(self) -> Auth:
        """System functions always run with the plain admin key, whatever view this is."""
        if isinstance(self.auth, AdminAuth):
            return AdminAuth(self.auth.key)
        return auth_from_credential(self.connection.credential)

    # -- deployment info ----------------------------------------------------

    async def instance_name(self) -> str:
        return (await self._request_text("GET", "/instance_name")).strip()

    async def version(self) -> str:
        return (await self._request_text("GET", "/version")).strip()

    async def check_admin_key(self) -> AdminKeyCheck:
        data = await self._request_json("GET", "/api/check_admin_key", auth=self._admin_auth())
        if not isinstance(data, dict):
            raise BadResponse(self.connection.url + "/api/check_admin_key", "expected a JSON object")
        return AdminKeyCheck(
            success=bool(data.get("success", True)),
            allowed_ops=list(data.get("allowedOps") or []),
            is_read_only=bool(data.get("isReadOnly", False)),
        )

    async def query_ts(self) -> int:
        data = await self._request_json("POST", "/api/query_ts", auth=self._admin_auth(), json={})
        return values.ts_from_wire(data["ts"])

    # -- tables and documents (PROTOCOL §3.1) ---------------------------------

    async def table_mapping(self) -> dict[int, str]:
        raw = await self._system_query("_system/frontend/getTableMapping")
        return {int(number): name for number, name in (raw or {}).items()}

    async def tables(self, *, counts: bool = True) -> list[TableInfo]:
        """User tables (sorted), then `_storage` and `_scheduled_functions`, with counts."""
        mapping = await self.table_mapping()
        numbers = {name: number for number, name in mapping.items()}
        user = sorted(name for name in numbers if not name.startswith("_"))
        infos = [TableInfo(name, numbers.get(name)) for name in user]
        infos.append(TableInfo("_storage", numbers.get("_file_storage", numbers.get("_storage"))))
        infos.append(TableInfo("_scheduled_functions", numbers.get("_scheduled_jobs", numbers.get("_scheduled_functions"))))
        if counts:
            limit = asyncio.Semaphore(8)

            async def count(info: TableInfo) -> None:
                async with limit:
                    info.count = await self._count_or_none(info.name)

            await asyncio.gather(*(count(info) for info in infos))
        return infos

    async def _count_or_none(self, table: str) -> int | None:
        try:
            if table == "_storage":
                return await self.num_files()
            return await self.table_size(table)
        except FunctionError:
            pass
        try:  # e.g. tableSize refuses system tables: count small ones page by page
            return await self._count_by_paging(table)
        except FunctionError:
            return None

    async def _count_by_paging(self, table: str, *, page_size: int = 1000, cap: int = COUNT_BY_PAGING_CAP) -> int | None:
        total, cursor = 0, None
        while total < cap:
            page = await self.cli_table_data(table, cursor=cursor, num_items=page_size)
            total += len(page.items)
            if page.is_done:
                return total
            cursor = page.continue_cursor
        return None

    async def table_size(self, table: str) -> int:
        return _as_int(await self._system_query("_system/frontend/tableSize", {"tableName": table}))

    async def table_page(
        self,
        table: str,
        *,
        filters: Iterable[FilterClause] = (),
        index: IndexFilter | SearchFilter | None = None,
        order: Order = "desc",
        cursor: str | None = None,
        num_items: int = 100,
        end_cursor: str | None = None,
    ) -> Page:
        """A page through `_system/frontend/paginatedTableDocuments` with dashboard filters."""
        expression = build_filter_expression(filters, index, order)
        args = {
            "table": table,
            "filters": encode_filters(expression) if expression is not None else None,
            "paginationOpts": _pagination(cursor, num_items, end_cursor),
        }
        return Page.from_result(await self._system_query("_system/frontend/paginatedTableDocuments", args))

    async def cli_table_data(self, table: str, *, order: Order = "asc", cursor: str | None = None, num_items: int = 100) -> Page:
        """A page through `_system/cli/tableData` (works for `_storage`, `_scheduled_functions`)."""
        args = {"table": table, "order": order, "paginationOpts": _pagination(cursor, num_items)}
        return Page.from_result(await self._system_query("_system/cli/tableData", args))

    async def list_by_id(self, refs: Sequence[tuple[str, str]]) -> list[dict | None]:
        """Documents for (id, table name) pairs, None where missing."""
        ids = [{"id": doc_id, "tableName": table} for doc_id, table in refs]
        return list(await self._system_query("_system/frontend/listById", {"ids": ids}))

    async def get_document(self, table: str, doc_id: str) -> dict | None:
        return (await self.list_by_id([(doc_id, table)]))[0]

    async def add_documents(self, table: str, documents: Sequence[Mapping[str, Any]]) -> None:
        _check_batch(documents)
        await self._system_mutation("_system/frontend/addDocument", {"table": table, "documents": [dict(d) for d in documents]})

    async def patch_fields(self, table: str, ids: Sequence[str], fields: Mapping[str, Any]) -> None:
        """Shallow-merge `fields` into each listed document; `values.UNDEFINED` removes a field.

        `ids` is required: the system function patches the whole table when it is absent.
        """
        if not ids:
            raise ValueError("patch_fields needs at least one document id")
        placeholders = {name: UNDEFINED_PLACEHOLDER if value is values.UNDEFINED else value for name, value in fields.items()}
        await self._system_mutation("_system/frontend/patchDocumentsFields", {"table": table, "fields": placeholders, "ids": list(ids)})

    async def replace_document(self, doc_id: str, document: Mapping[str, Any]) -> None:
        body = {k: v for k, v in document.items() if k not in ("_id", "_creationTime")}
        await self._system_mutation("_system/frontend/replaceDocument", {"id": doc_id, "document": body})

    async def delete_documents(self, refs: Sequence[tuple[str, str]]) -> None:
        """Delete (id, table name) pairs."""
        _check_batch(refs)
        to_delete = [{"id": doc_id, "tableName": table} for doc_id, table in refs]
        await self._system_mutation("_system/frontend/deleteDocuments", {"toDelete": to_delete})

    async def delete_tables(self, names: Sequence[str]) -> None:
        await self._request_json("POST", "/api/delete_tables", auth=self._admin_auth(), json={"tableNames": list(names), "componentId": None})

    # -- indexes, schema, shapes (PROTOCOL §3.2) ------------------------------

    async def indexes(self, table: str) -> list[IndexInfo]:
        raw = await self._system_query("_system/frontend/indexes:default", {"tableName": table, "tableNamespace": None})
        return [_index_info(item) for item in raw or []]

    async def schemas(self) -> Schemas:
        raw = await self._system_query("_system/frontend/getSchemas:default", {}) or {}
        return Schemas(_parse_json_text(raw.get("active")), _parse_json_text(raw.get("inProgress")))

    async def shapes(self) -> dict:
        return await self._request_json("GET", "/api/shapes2", auth=self._admin_auth()) or {}

    # -- functions (PROTOCOL §3.5) --------------------------------------------

    async def api_spec(self) -> list[FunctionSpec]:
        raw = await self._system_query("_system/cli/modules:apiSpec", {})
        return [FunctionSpec.from_json(item) for item in raw or []]

    async def modules(self) -> list:
        return list(await self._system_query("_system/frontend/modules:list", {}) or [])

    # -- file storage (PROTOCOL §3.4) -----------------------------------------

    async def file_metadata(
        self,
        *,
        cursor: str | None = None,
        num_items: int = 100,
        order: Order = "desc",
        min_creation_time: float | None = None,
        max_creation_time: float | None = None,
    ) -> Page:
        filters: dict[str, Any] = {"order": order}
        if min_creation_time is not None:
            filters["minCreationTime"] = float(min_creation_time)
        if max_creation_time is not None:
            filters["maxCreationTime"] = float(max_creation_time)
        args = {"paginationOpts": _pagination(cursor, num_items), "filters": filters}
        return Page.from_result(await self._system_query("_system/frontend/fileStorageV2:fileMetadata", args))

    async def num_files(self) -> int:
        return _as_int(await self._system_query("_system/frontend/fileStorageV2:numFiles", {}))

    async def get_file(self, storage_id: str) -> dict | None:
        return await self._system_query("_system/frontend/fileStorageV2:getFile", {"storageId": storage_id})

    async def generate_upload_url(self) -> str:
        return await self._system_mutation("_system/frontend/fileStorageV2:generateUploadUrl", {})

    async def upload_file(self, upload_url: str, data: bytes | AsyncIterator[bytes], *, content_type: str | None = None) -> str:
        """POST the bytes to an upload URL; returns the new `_storage` id."""
        headers = {"Content-Type": content_type} if content_type else {}
        try:
            response = await self._http.post(upload_url, content=data, headers=headers)
        except httpx.TimeoutException:
            raise Unreachable(upload_url, f"timed out after {self.timeout:g} s") from None
        except httpx.TransportError as exc:
            raise Unreachable(upload_url, _transport_reason(exc)) from None
        _raise_for_status(response)
        return _json_body(response)["storageId"]

    async def download_file(self, url: str) -> bytes:
        try:
            response = await self._http.get(url)
        except httpx.TransportError as exc:
            raise Unreachable(url, _transport_reason(exc)) from None
        _raise_for_status(response)
        return response.content

    async def delete_file(self, storage_id: str) -> None:
        await self._system_mutation("_system/frontend/fileStorageV2:deleteFile", {"storageId": storage_id})

    async def delete_files(self, storage_ids: Sequence[str]) -> None:
        await self._system_mutation("_system/frontend/fileStorageV2:deleteFiles", {"storageIds": list(storage_ids)})

    # -- scheduled functions (PROTOCOL §3.3) ----------------------------------

    async def scheduled_functions(self, *, cursor: str | None = None, num_items: int = 100, order: Order = "desc") -> Page:
        """`_scheduled_functions` documents of every state (name, args, scheduledTime, state)."""
        return await self.cli_table_data("_scheduled_functions", order=order, cursor=cursor, num_items=num_items)

    async def pending_scheduled_jobs(self, *, cursor: str | None = None, num_items: int = 100, udf_path: str | None = None) -> Page:
        """Raw pending/in-progress `_scheduled_jobs` documents, as the dashboard lists them."""
        args: dict[str, Any] = {"paginationOpts": _pagination(cursor, num_items)}
        if udf_path:
            args["udfPath"] = udf_path
        return Page.from_result(await self._system_query("_system/frontend/paginatedScheduledJobs:default", args))

    async def scheduled_job_args(self, args_id: str) -> list:
        """The args array of a job stored in `_scheduled_job_args` (bytes holding JSON)."""
        raw = await self._system_query("_system/frontend/scheduler:getArgs", {"argsId": args_id})
        blob = raw.get("args") if isinstance(raw, dict) else raw
        if isinstance(blob, bytes):
            return values.decode(json.loads(blob.decode("utf-8")))
        return blob

    async def cancel_job(self, job_id: str) -> None:
        await self._request_json("POST", "/api/cancel_job", auth=self._admin_auth(), json={"id": job_id, "componentId": None})

    async def cancel_all_jobs(self, *, udf_path: str | None = None) -> None:
        body: dict[str, Any] = {"componentId": None}
        if udf_path:
            body["udfPath"] = udf_path
        await self._request_json("POST", "/api/cancel_all_jobs", auth=self._admin_auth(), json=body)

    # -- environment variables (PROTOCOL §3.7) --------------------------------

    async def list_env_vars(self) -> dict[str, str]:
        data = await self._request_json("GET", "/api/list_environment_variables", auth=self._admin_auth())
        return dict((data or {}).get("environmentVariables") or {})

    async def update_env_vars(self, changes: Mapping[str, str | None]) -> None:
        """Set (str) or delete (None) several variables in one change."""
        body = {"changes": [{"name": name, "value": value} if value is not None else {"name": name} for name, value in changes.items()]}
        await self._request_json("POST", "/api/update_environment_variables", auth=self._admin_auth(), json=body)

    # -- logs (PROTOCOL §3.6) -------------------------------------------------

    async def stream_function_logs(self, cursor: Any = 0, *, timeout: float = LOG_POLL_TIMEOUT) -> LogBatch:
        """One long poll: returns at once if entries exist, else after up to 60 s with none."""
        data = await self._request_json(
            "GET", "/api/stream_function_logs", auth=self._admin_auth(), params={"cursor": cursor}, timeout=timeout
        )
        data = data or {}
        return LogBatch(list(data.get("entries") or []), data.get("newCursor", cursor))

    # -- auth providers (PROTOCOL §6.1) — added by the Auth screen owner ----------

    async def list_auth_providers(self) -> list[dict]:
        """The `_auth` rows of `auth.config`: `{domain, applicationID}` (OIDC) or
        `{type: "customJwt", issuer, jwks, algorithm, applicationID?}`; parse with
        `console.tokens.parse_providers`."""
        rows = await self._system_query("_system/frontend/listAuthProviders")
        if not isinstance(rows, list):
            raise BadResponse(self.connection.url + "/api/query", "listAuthProviders did not return a list")
        return [row for row in rows if isinstance(row, dict)]

    # -- scheduling additions (Schedules screen; issue 6) ---------------------
    # Cron jobs (`_system/frontend/listCronJobs`, `listCronJobRuns`), re-running a job's
    # function as admin, and the emulator's manual clock.

    async def list_cron_jobs(self) -> list[dict]:
        """`_cron_jobs` documents, each with `lastRun` (a `_cron_job_logs` doc or None) and `nextRun`."""
        return list(await self._system_query("_system/frontend/listCronJobs", {}) or [])

    async def list_cron_job_runs(self) -> list[dict]:
        """Every kept `_cron_job_logs` document (name, ts ns, udfPath, status, logLines, executionTime)."""
        return list(await self._system_query("_system/frontend/listCronJobRuns", {}) or [])

    async def rerun_function(self, path: str, args: Mapping[str, Any] | None = None) -> FunctionResult:
        """Run any function (query, mutation or action) as admin; the outcome, not an exception."""
        return await self.run_function("function", path, args, auth=self._admin_auth())

    async def advance_clock(self, ms: float) -> float:
        """Advance the emulator's manual clock (`--clock manual`); returns the new time in ms."""
        data = await self._request_json("POST", "/api/emulator/advance_clock", auth=self._admin_auth(), json={"ms": ms})
        return float((data or {}).get("now", 0.0))


    # -- file transfers (Files screen; issue 7) -------------------------------
    # Streaming upload/download with progress and sha256 checks; the work is in console/transfers.py.

    async def upload_path(self, path: Any, *, content_type: str | None = None, upload_url: str | None = None,
                          on_progress: Any = None, verify: bool = True) -> Any:
        """Stream a local file to a new upload URL (admin `generateUploadUrl` unless one is given);
        `on_progress(TransferProgress)` after each chunk; returns `transfers.UploadResult`.
        Raises `transfers.LocalFileError`, `transfers.IntegrityError`, ApiError, Unreachable."""
        from console import transfers

        return await transfers.upload_path(self, path, content_type=content_type, upload_url=upload_url,
                                           on_progress=on_progress, verify=verify)

    async def download_to_path(self, url: str, path: Any, *, on_progress: Any = None, overwrite: bool = False) -> Any:
        """Stream a download URL to `path` (via `path.part`), verifying the `Digest` header;
        returns `transfers.DownloadResult`."""
        from console import transfers

        return await transfers.download_to_path(self, url, path, on_progress=on_progress, overwrite=overwrite)

    # -- end of file transfers ------------------------------------------------

    # -- HTTP actions (HTTP screen and CORS audit; issue 9) ---------------------
    # Requests to the deployment's HTTP actions (site URL); the work is in console/http_requests.py.

    async def http_request(self, method: str, path: str, *, query: Any = None, headers: Any = (),
                           body: bytes | None = None, bearer: str | None = None, base_url: str | None = None,
                           timeout: float | None = None, max_body: int | None = None) -> Any:
        """Send `method path` to the site URL (or `base_url`); returns `http_requests.HttpExchange`.
        Only the given headers are sent (plus `Authorization: Bearer` when `bearer` is set), never
        the admin key. Raises `Unreachable` (refused, DNS, timeout)."""
        from console import http_requests

        pairs = list(headers.items()) if isinstance(headers, Mapping) else list(headers or ())
        if bearer:
            pairs = [(k, v) for k, v in pairs if k.lower() != "authorization"] + [("Authorization", f"Bearer {bearer.strip()}")]
        url = http_requests.build_url(base_url or self.connection.site_url, path, query)
        return await http_requests.send(
            self._http, method.upper(), url, headers=pairs, body=body, timeout=timeout or self.timeout,
            max_body=max_body or http_requests.DEFAULT_MAX_BODY,
        )

    # -- end of HTTP actions ----------------------------------------------------

# ---------------------------------------------------------------------------
# Helpers


def _pagination(cursor: str | None, num_items: int, end_cursor: str | None = None) -> dict:
    if not isinstance(num_items, int) or num_items < 1:
        raise ValueError(f"num_items must be a positive integer, not {num_items!r}")
    opts: dict[str, Any] = {"numItems": float(num_items), "cursor": cursor}  # v.number(): a float64
    if end_cursor is not None:
        opts["endCursor"] = end_cursor
    return opts


def _as_int(value: Any) -> int:
    return int(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else 0


def _check_batch(items: Sequence[Any]) -> None:
    if len(items) > MAX_DOCUMENTS_PER_CALL:
        raise ValueError(f"At most {MAX_DOCUMENTS_PER_CALL} documents per call, got {len(items)}")


def _parse_json_text(text: Any) -> dict | None:
    if not text:
        return None
    return json.loads(text) if isinstance(text, str) else text


def _index_info(item: Mapping[str, Any]) -> IndexInfo:
    fields = item.get("fields")
    if isinstance(fields, dict):
        kind = "vector" if "vectorField" in fields else "search"
    else:
        kind = "database"
    backfill = item.get("backfill") or {}
    return IndexInfo(
        name=str(item.get("name")),
        fields=fields,
        kind=kind,
        staged=bool(item.get("staged", False)),
        backfill_state=str(backfill.get("state", "done")) if isinstance(backfill, dict) else "done",
        raw=dict(item),
    )


def _function_result(response: httpx.Response, path: str, kind: str, elapsed: float) -> FunctionResult:
    body = _json_body(response)
    status = body.get("status") if isinstance(body, dict) else None
    if status not in ("success", "error") and isinstance(body, dict) and "code" in body:
        raise ApiError(response.status_code, str(body["code"]), str(body.get("message", "")))
    if status not in ("success", "error"):
        raise BadResponse(str(response.url), "the answer has no function status", response.status_code)
    logs = list(body.get("logLines") or [])
    try:
        if status == "success":
            return FunctionResult(path, kind, "success", value=values.decode(body.get("value")), log_lines=logs, elapsed=elapsed)
        data = values.decode(body["errorData"]) if body.get("errorData") is not None else None
    except ValueError as exc:
        raise BadResponse(str(response.url), f"the value is not valid convex_encoded_json ({exc})", response.status_code) from None
    return FunctionResult(path, kind, "error", error_message=str(body.get("errorMessage", "")), error_data=data, log_lines=logs, elapsed=elapsed)
