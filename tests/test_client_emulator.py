"""DeploymentClient, verify() and the command line against a running emulator (real sockets)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from console import values
from console.client import (
    ApiError,
    AuthError,
    BadResponse,
    DeploymentClient,
    FilterClause,
    FunctionError,
    IndexEq,
    IndexFilter,
    Unreachable,
    make_identity,
)
from console.connection import Connection
from console.discovery import verify
from console.startup import main

ROOT = Path(__file__).resolve().parents[1]
SEEDED_POSTS = 50  # conftest SMALL_SEED


def connection_for(emulator, key: str | None = "default") -> Connection:
    admin_key = emulator.admin_key if key == "default" else key
    return Connection.create(emulator.url, site_url=emulator.site_url, admin_key=admin_key, kind="emulator")


@pytest.fixture
async def client(emulator):
    async with DeploymentClient(connection_for(emulator)) as c:
        yield c


async def skip_if_missing(awaitable):
    """Run a wrapper whose system function the emulator may not serve yet."""
    try:
        return await awaitable
    except FunctionError as exc:
        if "Could not find public function" in exc.message:
            pytest.skip(f"emulator lacks it: {exc.message.splitlines()[-1][:100]}")
        raise
    except BadResponse as exc:
        if exc.status == 404:
            pytest.skip(f"emulator lacks the route: {exc.url}")
        raise


async def all_pages(client, table, **options):
    cursor, items = None, []
    while True:
        page = await client.table_page(table, cursor=cursor, **options)
        items += page.items
        if page.is_done:
            return items
        cursor = page.continue_cursor


async def test_deployment_info(client, emulator):
    assert await client.instance_name() == emulator.deployment.instance_name
    assert await client.version()
    check = await client.check_admin_key()
    assert check.success and not check.is_read_only
    first = await client.query_ts()
    await client.add_documents("counters", [{"name": "ts", "value": 1.0}])
    assert await client.query_ts() > first


async def test_tables_with_counts(client):
    tables = await client.tables()
    names = [t.name for t in tables]
    user = [n for n in names if not n.startswith("_")]
    assert user == sorted(user) and {"posts", "users"} <= set(user)
    assert names[-2:] == ["_storage", "_scheduled_functions"]
    by_name = {t.name: t for t in tables}
    assert by_name["posts"].count == SEEDED_POSTS == await client.table_size("posts")
    assert by_name["posts"].number and by_name["posts"].number >= 10001
    # counted even where tableSize refuses system tables (paged through _system/cli/tableData)
    assert isinstance(by_name["_scheduled_functions"].count, int) and isinstance(by_name["_storage"].count, int)


async def test_paging_through_a_table(client):
    items = await all_pages(client, "posts", num_items=20)
    ids = [d["_id"] for d in items]
    assert len(ids) == SEEDED_POSTS == len(set(ids))
    times = [d["_creationTime"] for d in items]
    assert times == sorted(times, reverse=True)  # default order desc
    ascending = await all_pages(client, "posts", num_items=15, order="asc")
    assert [d["_id"] for d in ascending] == ids[::-1]


async def test_filters_as_the_dashboard_sends_them(client):
    everything = await all_pages(client, "posts", num_items=100)
    published = await all_pages(client, "posts", num_items=100, filters=[FilterClause("published", "eq", True)])
    assert published and all(d["published"] is True for d in published)
    assert len(published) == sum(1 for d in everything if d["published"] is True)
    cutoff = sorted(d["_creationTime"] for d in everything)[10]
    newer = await all_pages(client, "posts", num_items=100, filters=[FilterClause("_creationTime", "gt", cutoff), FilterClause("published", "neq", True)])
    assert {d["_id"] for d in newer} == {d["_id"] for d in everything if d["_creationTime"] > cutoff and d["published"] is not True}
    disabled = await all_pages(client, "posts", num_items=100, filters=[FilterClause("published", "eq", True, enabled=False)])
    assert len(disabled) == len(everything)
    typed = await all_pages(client, "posts", num_items=100, filters=[FilterClause("authorId", "type", "id")])
    assert len(typed) == len(everything)
    untyped = await all_pages(client, "posts", num_items=100, filters=[FilterClause("authorId", "notype", "id")])
    assert untyped == []


async def test_index_filter_and_id_lookup(client):
    everything = await all_pages(client, "posts", num_items=100)
    author = everything[0]["authorId"]
    by_author = await all_pages(client, "posts", num_items=100, index=IndexFilter("by_author", (IndexEq(author),)), order="asc")
    assert by_author and all(d["authorId"] == author for d in by_author)
    assert len(by_author) == sum(1 for d in everything if d["authorId"] == author)
    page = await client.table_page("posts", filters=[FilterClause("_id", "eq", everything[3]["_id"])])
    assert [d["_id"] for d in page.items] == [everything[3]["_id"]] and page.is_done
    problem = await client.table_page("posts", index=IndexFilter("by_nothing"))
    assert problem.items == [] and problem.filter_problems and problem.filter_problems[0].filter == -1


async def test_cli_table_data_and_list_by_id(client):
    page = await client.cli_table_data("users", num_items=2, order="asc")
    assert len(page.items) == 2 and not page.is_done
    nxt = await client.cli_table_data("users", num_items=2, order="asc", cursor=page.continue_cursor)
    assert {d["_id"] for d in nxt.items}.isdisjoint(d["_id"] for d in page.items)
    post = (await client.table_page("posts", num_items=1)).items[0]
    await client.delete_documents([(post["_id"], "posts")])
    found = await client.list_by_id([(page.items[0]["_id"], "users"), (post["_id"], "posts")])
    assert found[0]["_id"] == page.items[0]["_id"] and found[1] is None


async def test_document_writes(client):
    await client.add_documents("counters", [{"name": "a", "value": 1.0}, {"name": "b", "value": 2.0}])
    docs = await all_pages(client, "counters", num_items=10, order="asc")
    assert [(d["name"], d["value"]) for d in docs] == [("a", 1.0), ("b", 2.0)]
    first = docs[0]
    await client.patch_fields("counters", [first["_id"]], {"value": 5.0})
    assert (await client.get_document("counters", first["_id"]))["value"] == 5.0
    await client.add_documents("users", [{"clerkId": "c1", "email": "e@x", "name": "N", "createdAt": 1.0}])
    user = (await client.table_page("users", filters=[FilterClause("clerkId", "eq", "c1")])).items[0]
    await client.patch_fields("users", [user["_id"]], {"name": values.UNDEFINED})
    assert "name" not in await client.get_document("users", user["_id"])
    await client.replace_document(first["_id"], {**first, "value": 9.0})
    replaced = await client.get_document("counters", first["_id"])
    assert replaced["value"] == 9.0 and replaced["_creationTime"] == first["_creationTime"]
    with pytest.raises(FunctionError, match="does not match the schema"):
        await client.add_documents("counters", [{"name": "x", "value": "not a number"}])
    await client.delete_documents([(d["_id"], "counters") for d in docs])
    assert await client.table_size("counters") == 0


async def test_schema_indexes_shapes_and_spec(client):
    indexes = await client.indexes("posts")
    by_name = {i.name: i for i in indexes}
    assert by_name["by_author_and_published"].fields == ["authorId", "published"]
    assert by_name["by_author"].kind == "database" and by_name["by_author"].backfill_state in ("done", "backfilled")
    schemas = await client.schemas()
    posts = schemas.table("posts")
    assert posts is not None and posts["documentType"]["type"] == "object"
    assert "authorId" in posts["documentType"]["value"]
    shapes = await client.shapes()
    assert shapes["posts"]["type"] == "Object"
    spec = await client.api_spec()
    identifiers = {s.identifier: s for s in spec}
    assert identifiers["posts.js:list"].function_type == "Query" and identifiers["posts.js:list"].visibility == "public"
    assert identifiers["posts.js:list"].args["type"] == "object"
    modules = dict((path, info) for path, info in await client.modules())
    assert any(f["name"] == "list" for f in modules["posts.js"]["functions"])


async def test_scheduled_functions_and_logs(client):
    page = await client.scheduled_functions(num_items=10)
    assert isinstance(page.items, list) and page.continue_cursor is not None
    await client.query("posts:list", {"limit": 1.0})
    batch = await client.stream_function_logs(0, timeout=10)
    assert batch.entries and batch.new_cursor not in (None, 0)
    assert any(e.get("identifier", "").startswith("posts") for e in batch.entries)


async def test_pending_scheduled_jobs(client):
    page = await skip_if_missing(client.pending_scheduled_jobs(num_items=10))
    assert page.items == [] or "udfPath" in page.items[0]
    await skip_if_missing(client.cancel_all_jobs())


async def test_file_storage(client):
    url = await skip_if_missing(client.generate_upload_url())
    storage_id = await client.upload_file(url, b"hello world", content_type="text/plain")
    assert await client.num_files() == 1
    info = await client.get_file(storage_id)
    assert info["_id"] == storage_id and info["size"] == 11.0
    assert await client.download_file(info["url"]) == b"hello world"
    listed = await client.file_metadata(num_items=10)
    assert [f["_id"] for f in listed.items] == [storage_id]
    await client.delete_files([storage_id])
    assert await client.get_file(storage_id) is None


async def test_env_vars(client):
    await skip_if_missing(client.update_env_vars({"GREETING": "hi", "OTHER": "x"}))
    await client.update_env_vars({"OTHER": None})
    assert await client.list_env_vars() == {"GREETING": "hi"}


async def test_function_errors(client):
    with pytest.raises(FunctionError, match="Could not find public function"):
        await client.query("nope:nothing")
    post = (await client.table_page("posts", num_items=1)).items[0]
    await client.delete_documents([(post["_id"], "posts")])
    with pytest.raises(FunctionError) as info:
        await client.mutation("comments:add", {"postId": post["_id"], "authorId": post["authorId"], "body": "x"})
    assert info.value.data == {"code": "POST_NOT_FOUND", "id": post["_id"]}
    result = await client.run_function("query", "posts:list", {"limit": 2.0})
    assert result.ok and len(result.value) == 2 and result.elapsed > 0


async def test_identity_views(client):
    identity = make_identity("user_42", "https://issuer.example", email="a@b.c")
    seen = await client.with_identity(identity).query("users:viewer")
    assert seen["subject"] == "user_42" and seen["tokenIdentifier"] == "https://issuer.example|user_42"
    assert seen["email"] == "a@b.c"
    assert await client.query("users:viewer") is None  # plain admin: no user identity
    assert await client.without_auth().query("users:viewer") is None
    with pytest.raises((AuthError, ApiError)):
        await client.with_token("not-a-jwt").query("users:viewer")


async def test_bad_key_is_auth_error(emulator):
    async with DeploymentClient(connection_for(emulator, "convex-console|deadbeefdeadbeefdeadbeefdeadbeef")) as bad:
        with pytest.raises(AuthError) as info:
            await bad.check_admin_key()
        assert info.value.status in (401, 403) and info.value.code
        with pytest.raises(AuthError):
            await bad.tables()


async def test_unreachable_quickly():
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()
    async with DeploymentClient(Connection.create(f"http://127.0.0.1:{port}", admin_key="x|y"), timeout=2) as c:
        with pytest.raises(Unreachable, match="refused"):
            await c.tables()


async def test_verify(emulator):
    ok = await verify(connection_for(emulator))
    assert ok.status == "ok" and ok.instance_name == emulator.deployment.instance_name
    no_key = await verify(connection_for(emulator, None))
    assert no_key.status == "ok" and "no admin key" in no_key.message
    bad = await verify(connection_for(emulator, "convex-console|deadbeefdeadbeefdeadbeefdeadbeef"))
    assert bad.status == "bad_key" and "deadbeefdeadbeefdeadbeef" not in bad.message and "••••beef" in bad.message
    not_convex = await verify(Connection.create(emulator.site_url, admin_key=emulator.admin_key))
    assert not_convex.status == "not_convex"
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()
    down = await verify(Connection.create(f"http://127.0.0.1:{port}"), timeout=2)
    assert down.status == "unreachable"


def run_cli(tmp_path, *args, **env_extra):
    env = {k: v for k, v in os.environ.items() if "CONVEX" not in k}
    env.update(CONVEX_CONSOLE_CONFIG_DIR=str(tmp_path / "config"), PYTHONPATH=str(ROOT), **env_extra)
    return subprocess.run([sys.executable, "-m", "console.startup", *args], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=60)


def test_cli_bad_key_exits_2(tmp_path, emulator):
    result = run_cli(tmp_path, "--url", emulator.url, "--admin-key", "convex-console|deadbeefdeadbeefdeadbeefdeadbeef")
    assert result.returncode == 2
    (line,) = result.stderr.strip().splitlines()
    assert line.startswith("convex-console: error: ") and "refused the key" in line and "deadbeefdeadbeefdeadbeef" not in line


def test_cli_check_ok(tmp_path, emulator):
    result = run_cli(tmp_path, "--url", emulator.url, "--admin-key-env", "MY_KEY", "--check", MY_KEY=emulator.admin_key)
    assert result.returncode == 0, result.stderr
    assert ": ok: " in result.stdout and emulator.admin_key not in result.stdout


def test_no_arguments_starts_the_builtin_emulator(tmp_path, monkeypatch):
    for name in list(os.environ):
        if "CONVEX" in name:
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("CONVEX_CONSOLE_DATA_DIR", str(tmp_path / "data"))
    seen = {}

    def ui(connection, origin, settings):
        import asyncio

        async def probe():
            async with DeploymentClient(connection) as c:
                return await c.table_size("posts")

        seen.update(connection=connection, origin=origin, posts=asyncio.run(probe()), state_key=settings.state_key)
        return 0

    assert main(["--config-dir", str(tmp_path / "config")], run_ui=ui) == 0
    assert seen["origin"] == "built-in emulator" and seen["connection"].kind == "emulator"
    assert seen["connection"].display_name.startswith("emulator:") and seen["state_key"] == "emulator"
    assert seen["posts"] >= 1000  # seeded with a few thousand documents
    assert (tmp_path / "data" / "emulator").is_dir()
    with pytest.raises(Exception):  # stopped after the UI returned
        socket.create_connection(("127.0.0.1", seen["connection"].port), timeout=1).close()
