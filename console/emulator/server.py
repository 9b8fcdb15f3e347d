"""The emulator's composition: one `Deployment`, two starlette apps, uvicorn serving both.

Later parts plug in here without touching the rest: each entry of `CLOUD_ROUTES`,
`SITE_ROUTES` and `SERVICES` names `"module:function"`; a module that does not exist yet is
skipped. Route providers take the deployment and return starlette routes; a service is
`async def start(deployment)` returning an optional `async def stop()` (background tasks).
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import logging
import secrets
import signal
import socket
import tempfile
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Awaitable, Callable

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import BaseRoute, Route

from console.allocator import keep_large_buffers_on_the_heap
from console.emulator import admin as admin_keys
from console.emulator.clock import ManualClock, WallClock
from console.emulator.executions import ExecutionLog

log = logging.getLogger(__name__)

DEFAULT_APP = "console.emulator.demo"
DEFAULT_INSTANCE_NAME = "convex-console"
VERSION = "0.1.0"

# Route providers for the cloud port (API, sync, storage, /http/ actions), in match order:
# the function API first (the hot path matches fewer routes); paths must not overlap.
CLOUD_ROUTES = [
    "console.emulator.http_api:routes",
    "console.emulator.sync_server:routes",
    "console.emulator.auth_routes:routes",
    "console.emulator.storage_http:routes",
    "console.emulator.scheduling_http:routes",
    "console.emulator.http_actions:cloud_routes",
]
# Route providers for the site port (HTTP actions).
SITE_ROUTES = [
    "console.emulator.http_actions:site_routes",
]
# Background services, started before the ports accept requests, stopped in reverse order
# (storage first: scheduled functions may use it).
SERVICES = [
    "console.emulator.storage:start",
    "console.emulator.scheduler:start",
]


def _resolve(spec: str) -> Callable | None:
    """`"pkg.mod:fn"` -> fn, or None when the module is not written yet."""
    module_name, _, attr = spec.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as error:
        if error.name and module_name.startswith(error.name):
            return None
        raise
    return getattr(module, attr, None)


def _make_clock(clock: str | Any):
    if clock in (None, "wall"):
        return WallClock()
    if clock == "manual":
        return ManualClock()
    if isinstance(clock, str):
        raise ValueError(f"Unknown clock {clock!r}: use 'wall' or 'manual'")
    return clock


@dataclass
class Deployment:
    """Everything one emulated deployment is made of."""

    data_dir: Path | None
    app_module: str
    clock: Any
    db: Any
    app: Any
    runner: Any
    executions: ExecutionLog
    admin_key: str = field(repr=False)  # never in logs or tracebacks
    instance_name: str
    admin_auth: admin_keys.AdminAuth
    cloud_url: str = ""
    site_url: str = ""
    env_vars: dict[str, str] = field(default_factory=dict)
    # Extra `{functionType:"HttpAction", method, path}` specs, filled by the HTTP actions part.
    http_routes: Callable[[], list[dict]] = lambda: []
    extras: dict[str, Any] = field(default_factory=dict)  # per-part state (scheduler, storage, ...)

    @classmethod
    def create(
        cls,
        *,
        data_dir: str | Path | None = None,
        in_memory: bool = False,
        app: str = DEFAULT_APP,
        clock: str | Any = "wall",
        instance_name: str = DEFAULT_INSTANCE_NAME,
        admin_key: str | None = None,
        seed: int = 0,
    ) -> "Deployment":
        from console.emulator.app import load_app
        from console.emulator.engine import Database
        from console.emulator.runtime import FunctionRunner
        from console.emulator import system

        clock_obj = _make_clock(clock)
        directory = None if in_memory else Path(data_dir or default_data_dir())
        if directory is not None:
            directory.mkdir(parents=True, exist_ok=True)
            admin_key = admin_key or admin_keys.load_or_create_admin_key(directory, instance_name)
        else:
            admin_key = admin_key or admin_keys.generate_admin_key(instance_name)
        db = Database.open(None if directory is None else directory / "db.sqlite3", clock=clock_obj)
        try:
            loaded = load_app(app)
            db.set_schema(getattr(loaded, "schema", None))
        except BaseException:
            db.close()
            raise
        executions = ExecutionLog()
        env_vars: dict[str, str] = {}
        runner = FunctionRunner(
            db, loaded, executions=executions, clock=clock_obj, env_provider=lambda: dict(env_vars)
        )
        admin_auth = admin_keys.AdminAuth(admin_key, instance_name)
        admin_auth.providers = lambda: _auth_providers(loaded)
        deployment = cls(
            data_dir=directory,
            app_module=app,
            clock=clock_obj,
            db=db,
            app=loaded,
            runner=runner,
            executions=executions,
            admin_key=admin_key,
            instance_name=instance_name,
            admin_auth=admin_auth,
            env_vars=env_vars,
        )
        system.install(deployment)
        _install_http_routes(deployment)
        _install_token_verification(deployment)
        if seed:
            seed_if_empty(deployment, seed)
        return deployment

    def close(self) -> None:
        for resource in (self.runner, self.db):
            close = getattr(resource, "close", None)
            if close is not None:
                close()


def _auth_providers(app) -> list:
    configs = _resolve("console.emulator.auth:app_provider_configs")
    if configs is not None:
        return list(configs(app) or [])
    config = getattr(app, "auth_config", None)
    if config is None:
        return []
    providers = config.get("providers") if isinstance(config, dict) else getattr(config, "providers", None)
    return list(providers or [])


def _install_http_routes(deployment: "Deployment") -> None:
    """apiSpec lists the app's HTTP routes even before the ports are served."""
    install = _resolve("console.emulator.http_actions:install")
    if install is not None:
        install(deployment)


def _install_token_verification(deployment: "Deployment") -> None:
    """Let the auth part verify Bearer tokens (`EmulatorAuth.install(admin_auth)`), if present."""
    auth_for = _resolve("console.emulator.auth:auth_for")
    if auth_for is None:
        return
    emulator_auth = auth_for(deployment)
    install = getattr(emulator_auth, "install", None)
    if install is not None:
        install(deployment.admin_auth)


def seed_if_empty(deployment: Deployment, n: int) -> bool:
    """Seed `n` posts (and n/10 users) when the app's tables are empty."""
    from console.emulator.seed import seed

    names = deployment.db.table_names()
    if any(deployment.db.read(lambda tx, name=name: tx.count(name)) for name in names):
        return False
    seed(deployment.db, n)
    return True


def default_data_dir() -> Path:
    import platformdirs

    return Path(platformdirs.user_data_dir("convex-console")) / "emulator"


# --- the two starlette apps ----------------------------------------------------------------


def _collect_routes(specs: list[str], deployment: Deployment) -> list[BaseRoute]:
    routes: list[BaseRoute] = []
    for spec in specs:
        provider = _resolve(spec)
        if provider is not None:
            routes.extend(provider(deployment))
    return routes


def build_cloud_app(deployment: Deployment) -> Starlette:
    from console.emulator.http_api import CorsMiddleware, exception_handlers

    app = Starlette(
        routes=_collect_routes(CLOUD_ROUTES, deployment),
        exception_handlers=exception_handlers(),
    )
    app.state.deployment = deployment
    return CorsMiddleware(app)


async def _no_http_action(request: Request) -> Response:
    return PlainTextResponse(f"No HttpAction routed for {request.url.path}", status_code=404)


def build_site_app(deployment: Deployment) -> Starlette:
    from console.emulator.http_api import exception_handlers

    methods = ["GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "HEAD"]
    routes = _collect_routes(SITE_ROUTES, deployment)
    routes.append(Route("/{path:path}", _no_http_action, methods=methods))
    app = Starlette(routes=routes, exception_handlers=exception_handlers())
    app.state.deployment = deployment
    return app


# --- serving -------------------------------------------------------------------------------


class _Server(uvicorn.Server):
    """uvicorn without its own signal handling: `serve_both` handles signals for both ports."""

    @contextlib.contextmanager
    def capture_signals(self):
        yield


def bind_socket(host: str, port: int) -> socket.socket:
    """A listening socket; port 0 picks a free port. Raises OSError when the port is busy."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    # Accepted sockets inherit it; without it, small responses stall ~40 ms on delayed ACKs.
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    try:
        sock.bind((host, port))
        sock.listen(2048)
    except OSError:
        sock.close()
        raise
    sock.setblocking(False)
    return sock


def _url(host: str, sock: socket.socket) -> str:
    port = sock.getsockname()[1]
    shown = f"[{host}]" if ":" in host else host
    return f"http://{shown}:{port}"


def _uvicorn_server(app, log_level: str) -> _Server:
    config = uvicorn.Config(
        app,
        log_level=log_level,
        access_log=False,
        lifespan="off",
        timeout_graceful_shutdown=3,
        ws_ping_interval=None,
    )
    return _Server(config)


async def _start_services(deployment: Deployment) -> list[Callable[[], Awaitable[None]]]:
    stops = []
    for spec in SERVICES:
        start = _resolve(spec)
        if start is None:
            continue
        stop = await start(deployment)
        if stop is not None:
            stops.append(stop)
    return stops


async def serve_deployment(
    deployment: Deployment,
    cloud_sock: socket.socket,
    site_sock: socket.socket,
    *,
    ready: Callable[[], None] | None = None,
    stop_event: asyncio.Event | None = None,
    log_level: str = "warning",
) -> None:
    """Serve both ports until `stop_event` is set, then shut down cleanly."""
    keep_large_buffers_on_the_heap()  # for the whole process: request bodies stream without page faults
    stop_event = stop_event or asyncio.Event()
    stopping = deployment.extras["stopping"] = asyncio.Event()  # long polls end on it
    cloud = _uvicorn_server(build_cloud_app(deployment), log_level)
    site = _uvicorn_server(build_site_app(deployment), log_level)
    stops = await _start_services(deployment)
    tasks = [
        asyncio.create_task(cloud.serve(sockets=[cloud_sock])),
        asyncio.create_task(site.serve(sockets=[site_sock])),
    ]
    try:
        while not (cloud.started and site.started):
            if any(task.done() for task in tasks):
                break
            await asyncio.sleep(0.01)
        if ready is not None:
            ready()
        waiter = asyncio.create_task(stop_event.wait())
        await asyncio.wait([waiter, *tasks], return_when=asyncio.FIRST_COMPLETED)
        waiter.cancel()
    finally:
        stopping.set()
        cloud.should_exit = site.should_exit = True
        await asyncio.gather(*tasks, return_exceptions=True)
        for stop in reversed(stops):
            with contextlib.suppress(Exception):
                await stop()


def serve(
    deployment: Deployment,
    *,
    host: str = "127.0.0.1",
    port: int = 3210,
    site_port: int = 3211,
    on_ready: Callable[[Deployment], None] | None = None,
    log_level: str = "warning",
) -> None:
    """Serve on the main thread until Ctrl+C or SIGTERM (the `emulator` command)."""
    cloud_sock = bind_socket(host, port)
    try:
        site_sock = bind_socket(host, site_port)
    except OSError:
        cloud_sock.close()
        raise
    deployment.cloud_url = _url(host, cloud_sock)
    deployment.site_url = _url(host, site_sock)

    async def main() -> None:
        stop_event = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop_event.set)
        await serve_deployment(
            deployment,
            cloud_sock,
            site_sock,
            ready=(lambda: on_ready(deployment)) if on_ready else None,
            stop_event=stop_event,
            log_level=log_level,
        )

    try:
        asyncio.run(main())
    finally:
        cloud_sock.close()
        site_sock.close()
        deployment.close()


# --- in-process emulators for tests and benchmarks -------------------------------------------


@dataclass
class RunningEmulator:
    url: str
    site_url: str
    admin_key: str = field(repr=False)
    deployment: Deployment
    _thread: threading.Thread
    _loop: asyncio.AbstractEventLoop
    _stop_event: asyncio.Event

    def stop(self) -> None:
        if not self._thread.is_alive():
            return
        self._loop.call_soon_threadsafe(self._stop_event.set)
        self._thread.join(timeout=15)
        self.deployment.close()

    def __enter__(self) -> "RunningEmulator":
        return self

    def __exit__(self, *exc) -> None:
        self.stop()


def start_emulator(*, host: str = "127.0.0.1", port: int = 0, site_port: int = 0, **options) -> RunningEmulator:
    """Build a deployment (`Deployment.create(**options)`; in memory unless `data_dir` is
    given) and serve it on real sockets from a background thread."""
    if "data_dir" not in options:
        options.setdefault("in_memory", True)
    deployment = Deployment.create(**options)
    try:
        cloud_sock = bind_socket(host, port)
        site_sock = bind_socket(host, site_port)
    except OSError:
        deployment.close()
        raise
    deployment.cloud_url = _url(host, cloud_sock)
    deployment.site_url = _url(host, site_sock)
    started = threading.Event()
    holder: dict[str, Any] = {}

    def run() -> None:
        loop = asyncio.new_event_loop()
        asyncio.set_event_loop(loop)
        stop_event = asyncio.Event()
        holder.update(loop=loop, stop_event=stop_event)
        try:
            loop.run_until_complete(
                serve_deployment(deployment, cloud_sock, site_sock, ready=started.set, stop_event=stop_event)
            )
        except BaseException as error:  # surfaced to the starter below
            holder["error"] = error
        finally:
            started.set()
            cloud_sock.close()
            site_sock.close()
            loop.close()

    thread = threading.Thread(target=run, name=f"emulator-{secrets.token_hex(2)}", daemon=True)
    thread.start()
    if not started.wait(30) or "error" in holder or not thread.is_alive():
        raise RuntimeError(f"emulator failed to start: {holder.get('error')!r}")
    return RunningEmulator(
        url=deployment.cloud_url,
        site_url=deployment.site_url,
        admin_key=deployment.admin_key,
        deployment=deployment,
        _thread=thread,
        _loop=holder["loop"],
        _stop_event=holder["stop_event"],
    )


def temporary_data_dir() -> Path:
    return Path(tempfile.mkdtemp(prefix="convex-console-"))
