"""The admin data functions (`_system/cli/*`, `_system/frontend/*`) and admin endpoints: shapes."""

from __future__ import annotations

import json
import threading
import time

import httpx
import pytest

from console import ids
from console.emulator.server import start_emulator
from console.emulator.system.filters import UNDEFINED_PLACEHOLDER, encode_filters

N_POSTS = 40


@pytest.fixture(scope="module")
def shared():
    emulator = start_emulator(seed=N_POSTS)
    yield emulator
    emulator.stop()


class Admin:
    def __init__(self, emulator):
        self.emulator = emulator
        self.http = httpx.Client(
            base_url=emulator.url,
            headers={"Authorization": f"Convex {emulator.admin_key}", "Convex-Client": "npm-cli-1.45.0"},
            timeout=30,
        )

    def call(self, kind: str, path: str, args: dict, fmt: str = "json"):
        body = self.http.post(f"/api/{kind}", json={"path": path, "args": args, "format": fmt}).json()
        assert body["status"] == "success", body
        return body["value"]

    def query(self, path: str, **args):
        return self.call("query", path, args)

    def mutation(self, path: str, **args):
        return self.call("mutation", path, args)

    def error(self, kind: str, path: str, **args) -> dict:
        body = self.http.post(f"/api/{kind}", json={"path": path, "args": args, "format": "json"}).json()
        assert body["status"] == "error", body
        return body


@pytest.fixture
def admin(shared):
    client = Admin(shared)
    yield client
    client.http.close()


@pytest.fixture
def fresh(emulator_factory):
    client = Admin(emulator_factory(seed=0))
    yield client
    client.http.close()


def page_opts(n: int = 10, cursor=None) -> dict:
    return {"numItems": float(n), "cursor": cursor}


def test_cli_tables_hides_system_tables(admin):
    result = admin.query("_system/cli/tables", paginationOpts=page_opts())
    names = [entry["name"] for entry in result["page"]]
    assert {"users", "posts", "comments"} <= set(names)
    assert not any(name.startswith("_") for name in names)
    assert result["isDone"] is True and result["continueCursor"] == "end"


def test_cli_table_data_pages_through_every_post(admin):
    seen, cursor = [], None
    while True:
        page = admin.query("_system/cli/tableData", table="posts", order="asc", paginationOpts=page_opts(7, cursor))
        assert set(page) >= {"page", "isDone", "continueCursor"}
        seen.extend(doc["_id"] for doc in page["page"])
        if page["isDone"]:
            break
        cursor = page["continueCursor"]
    assert len(seen) == N_POSTS == len(set(seen))
    times = [doc["_creationTime"] for doc in admin.query("_system/cli/tableData", table="posts", order="desc", paginationOpts=page_opts(5))["page"]]
    assert times == sorted(times, reverse=True)


def test_table_sizes(admin):
    assert admin.query("_system/cli/tableSize", tableName="posts") == float(N_POSTS)
    assert admin.query("_system/frontend/tableSize", tableName="posts") == float(N_POSTS)
    assert admin.query("_system/frontend/tableSize", tableName="") == 0.0
    total = admin.query("_system/frontend/tableSize:sizeOfAllTables")
    users = admin.query("_system/cli/tableSize", tableName="users")
    assert total >= N_POSTS + users


def test_get_table_mapping(admin):
    mapping = admin.query("_system/frontend/getTableMapping")
    assert "posts" in mapping.values()
    number = next(key for key, name in mapping.items() if name == "posts")
    post = admin.query("_system/cli/tableData", table="posts", order="asc", paginationOpts=page_opts(1))["page"][0]
    assert ids.decode_id(post["_id"])[0] == int(number) >= 10001


def test_indexes_hide_implicit_ones(admin):
    indexes = admin.query("_system/frontend/indexes", tableName="posts", tableNamespace=None)
    names = {index["name"] for index in indexes}
    assert {"by_author", "by_published", "by_author_and_published"} <= names
    assert not names & {"by_id", "by_creation_time"}
    by_author = next(index for index in indexes if index["name"] == "by_author")
    assert by_author == {"name": "by_author", "staged": False, "fields": ["authorId"], "backfill": {"state": "done"}}
    assert admin.query("_system/frontend/indexes", tableName="ghosts", tableNamespace=None) is None


def test_get_schemas(admin):
    schemas = admin.query("_system/frontend/getSchemas")
    assert set(schemas) == {"active"}
    active = json.loads(schemas["active"])
    assert {"tables", "schemaValidation"} <= set(active)
    assert "posts" in [table["tableName"] for table in active["tables"]]


def test_list_by_id(admin):
    posts = admin.query("_system/cli/tableData", table="posts", order="asc", paginationOpts=page_opts(2))["page"]
    result = admin.query(
        "_system/frontend/listById",
        ids=[{"id": posts[0]["_id"], "tableName": "posts"}, {"id": "bogus", "tableName": "posts"}, {"id": posts[1]["_id"], "tableName": "users"}],
    )
    assert result[0]["_id"] == posts[0]["_id"]
    assert result[1:] == [None, None]


def test_add_patch_replace_delete(fresh):
    assert fresh.mutation("_system/frontend/addDocument", table="notes", documents=[{"n": 1.0}, {"n": 2.0}]) == {"success": True}
    docs = fresh.query("_system/cli/tableData", table="notes", order="asc", paginationOpts=page_opts())["page"]
    assert [doc["n"] for doc in docs] == [1.0, 2.0]
    assert fresh.mutation("_system/frontend/patchDocumentsFields", table="notes", fields={"tag": "x", "n": UNDEFINED_PLACEHOLDER}, ids=[docs[0]["_id"]]) == {"success": True}
    patched = fresh.query("_system/frontend/listById", ids=[{"id": docs[0]["_id"], "tableName": "notes"}])[0]
    assert patched["tag"] == "x" and "n" not in patched
    assert fresh.mutation("_system/frontend/patchDocumentsFields", table="notes", fields={"all": True}) == {"success": True}
    assert all(doc["all"] for doc in fresh.query("_system/cli/tableData", table="notes", order="asc", paginationOpts=page_opts())["page"])
    assert fresh.mutation("_system/frontend/replaceDocument", id=docs[1]["_id"], document={"only": "this"}) == {"success": True}
    replaced = fresh.query("_system/frontend/listById", ids=[{"id": docs[1]["_id"], "tableName": "notes"}])[0]
    assert set(replaced) == {"_id", "_creationTime", "only"}
    assert fresh.mutation("_system/frontend/deleteDocuments", toDelete=[{"id": d["_id"], "tableName": "notes"} for d in docs]) == {"success": True}
    assert fresh.query("_system/cli/tableSize", tableName="notes") == 0.0
    assert fresh.mutation("_system/frontend/replaceDocument", id=docs[1]["_id"], document={}) == {
        "success": False,
        "error": "Document does not exist.",
    }


def test_bulk_limits(fresh):
    too_many = fresh.mutation("_system/frontend/addDocument", table="notes", documents=[{}] * 4097)
    assert too_many == {"success": False, "error": "Can’t import more than 4096 documents at once."}
    deletions = [{"id": "x", "tableName": "notes"}] * 4097
    assert fresh.mutation("_system/frontend/deleteDocuments", toDelete=deletions) == {
        "success": False,
        "error": "You can't delete more than 4096. Try selecting fewer documents instead..",
    }


# --- paginatedTableDocuments filters (QUERIES §3.4) -----------------------------------------


@pytest.fixture
def filtered(fresh):
    docs = [
        {"name": "a", "age": 10.0, "tags": ["x"]},
        {"name": "b", "age": 20.0, "nick": None},
        {"name": "c", "age": 30.0, "big": {"$integer": "AQAAAAAAAAA="}},
        {"name": "d", "nested": {"k": 1.0}},
    ]
    body = {"path": "_system/frontend/addDocument", "args": {"table": "people", "documents": docs}, "format": "json"}
    assert fresh.http.post("/api/mutation", json=body).json()["value"] == {"success": True}
    return fresh


def documents(client, filters, n=25, table="people"):
    encoded = None if filters is None else encode_filters(filters)
    return client.query("_system/frontend/paginatedTableDocuments", table=table, filters=encoded, paginationOpts=page_opts(n))


def names(result):
    return [doc["name"] for doc in result["page"]]


def test_no_filters_defaults_to_desc(filtered):
    assert names(documents(filtered, None)) == ["d", "c", "b", "a"]
    assert names(documents(filtered, {"clauses": [], "order": "asc"})) == ["a", "b", "c", "d"]


def test_builtin_clauses(filtered):
    clause = {"id": "0.1", "field": "age", "op": "gte", "value": 20.0, "enabled": True}
    assert names(documents(filtered, {"clauses": [clause], "order": "asc"})) == ["b", "c"]
    disabled = dict(clause, enabled=False)
    assert names(documents(filtered, {"clauses": [disabled], "order": "asc"})) == ["a", "b", "c", "d"]
    no_enabled_key = {"field": "name", "op": "neq", "value": "a"}
    assert names(documents(filtered, {"clauses": [no_enabled_key, clause], "order": "asc"})) == ["b", "c"]
    unset = {"field": "age", "op": "eq", "value": UNDEFINED_PLACEHOLDER}
    assert names(documents(filtered, {"clauses": [unset]})) == ["d"]
    nested = {"field": "nested.k", "op": "eq", "value": 1.0}
    assert names(documents(filtered, {"clauses": [nested]})) == ["d"]
    any_of = {"field": "name", "op": "anyOf", "value": ["a", "c"]}
    assert names(documents(filtered, {"clauses": [any_of], "order": "asc"})) == ["a", "c"]


def test_type_clauses_apply_after_paging(filtered):
    result = documents(filtered, {"clauses": [{"field": "nick", "op": "type", "value": "null"}]})
    assert names(result) == ["b"]
    unset = documents(filtered, {"clauses": [{"field": "age", "op": "type", "value": "unset"}]})
    assert names(unset) == ["d"]
    bigint = documents(filtered, {"clauses": [{"field": "big", "op": "type", "value": "bigint"}]})
    assert names(bigint) == ["c"]
    not_array = documents(filtered, {"clauses": [{"field": "tags", "op": "notype", "value": "array"}], "order": "asc"})
    assert names(not_array) == ["b", "c", "d"]
    first_page = documents(filtered, {"clauses": [{"field": "nick", "op": "type", "value": "null"}]}, n=1)
    assert first_page["page"] == [] and first_page["isDone"] is False


def test_invalid_values_come_back_as_error_pages(filtered):
    result = documents(filtered, {"clauses": [{"field": "age", "op": "eq", "value": {"$integer": "bad"}}]})
    assert result == {"page": [{"filter": 0, "error": 'Invalid value: {"$integer":"bad"}.'}], "isDone": True, "continueCursor": ""}


def test_single_id_uses_get(filtered):
    doc = documents(filtered, {"clauses": [], "order": "asc"})["page"][0]
    one = documents(filtered, {"clauses": [{"field": "_id", "op": "eq", "value": doc["_id"]}]})
    assert one == {"page": [doc], "isDone": True, "continueCursor": ""}
    bad = documents(filtered, {"clauses": [{"field": "_id", "op": "eq", "value": "nope"}]})
    assert bad == {"page": [], "isDone": True, "continueCursor": ""}


def test_index_clauses(admin):
    posts = admin.query("_system/cli/tableData", table="posts", order="asc", paginationOpts=page_opts(100))["page"]
    author = posts[0]["authorId"]
    expected = sorted((p for p in posts if p["authorId"] == author), key=lambda p: p["_creationTime"], reverse=True)
    index = {"name": "by_author", "clauses": [{"type": "indexEq", "enabled": True, "value": author}]}
    result = admin.query(
        "_system/frontend/paginatedTableDocuments", table="posts", filters=encode_filters({"clauses": [], "index": index}), paginationOpts=page_opts(100)
    )
    assert [p["_id"] for p in result["page"]] == [p["_id"] for p in expected]
    middle = sorted(p["_creationTime"] for p in posts)[len(posts) // 2]
    default_index = {"name": "by_creation_time", "clauses": [{"type": "indexRange", "enabled": True, "lowerOp": "gte", "lowerValue": middle}]}
    ranged = admin.query(
        "_system/frontend/paginatedTableDocuments", table="posts",
        filters=encode_filters({"clauses": [], "order": "asc", "index": default_index}), paginationOpts=page_opts(100),
    )
    assert [p["_creationTime"] for p in ranged["page"]] == sorted(p["_creationTime"] for p in posts if p["_creationTime"] >= middle)
    disabled = dict(default_index, clauses=[dict(default_index["clauses"][0], enabled=False)])
    everything = admin.query(
        "_system/frontend/paginatedTableDocuments", table="posts", filters=encode_filters({"clauses": [], "index": disabled}), paginationOpts=page_opts(100)
    )
    assert len(everything["page"]) == len(posts)


@pytest.mark.parametrize(
    "index, error",
    [
        ({"name": "by_nothing", "clauses": []}, "Index by_nothing does not exist."),
        (
            {"name": "by_author", "clauses": [{"type": "indexEq", "enabled": True, "value": "x"}, {"type": "indexEq", "enabled": True, "value": "y"}]},
            "Index by_author has 1 fields, but the query has 2 clauses.",
        ),
        (
            {"name": "by_author_and_published", "clauses": [{"type": "indexEq", "enabled": False, "value": "x"}, {"type": "indexEq", "enabled": True, "value": True}]},
            "Invalid index filter selection: found an enabled clause after an disabled clause.",
        ),
        (
            {"name": "by_author", "search": "hello", "clauses": []},
            "Index by_author is not a search index, but the query is trying to use it as search index.",
        ),
    ],
)
def test_index_validation_errors(admin, index, error):
    result = admin.query(
        "_system/frontend/paginatedTableDocuments", table="posts",
        filters=encode_filters({"clauses": [], "order": "asc", "index": index}), paginationOpts=page_opts()
    )
    assert result == {"page": [{"filter": -1, "error": error}], "isDone": True, "continueCursor": ""}


def test_malformed_filters_throw(admin):
    body = admin.error("query", "_system/frontend/paginatedTableDocuments", table="posts", filters=encode_filters({"nope": 1}), paginationOpts=page_opts())
    assert "Invalid filters" in body["errorMessage"]


# --- function spec ----------------------------------------------------------------------------


def test_api_spec_shape(admin):
    spec = admin.query("_system/cli/modules:apiSpec")
    by_id = {entry["identifier"]: entry for entry in spec if "identifier" in entry}
    get = by_id["posts.js:get"]
    assert get["functionType"] == "Query" and get["visibility"] == {"kind": "public"}
    assert get["args"] == {"type": "object", "value": {"id": {"fieldType": {"type": "id", "tableName": "posts"}, "optional": False}}}
    assert by_id["posts.js:countAll"]["visibility"] == {"kind": "internal"}
    assert by_id["posts.js:create"]["functionType"] == "Mutation"
    assert by_id["emails.js:sendTestEmail"]["functionType"] == "Action"
    assert not any(identifier.startswith("_system") for identifier in by_id)
    for entry in spec:
        if entry["functionType"] == "HttpAction":
            assert set(entry) == {"functionType", "method", "path"}
        else:
            assert set(entry) == {"identifier", "functionType", "visibility", "args", "returns"}


def test_http_routes_hook_adds_http_actions(shared, admin):
    shared.deployment.http_routes = lambda: [{"method": "GET", "path": "/hello"}]
    try:
        spec = admin.query("_system/cli/modules:apiSpec")
        assert {"functionType": "HttpAction", "method": "GET", "path": "/hello"} in spec
        listed = dict((path, module) for path, module in admin.query("_system/frontend/modules:list"))
        assert {"name": "GET /hello", "udfType": "HttpAction", "visibility": {"kind": "public"}} in listed["http.js"]["functions"]
    finally:
        shared.deployment.http_routes = lambda: []


def test_modules_list_shape(admin):
    modules = admin.query("_system/frontend/modules:list")
    by_path = {path: module for path, module in modules}
    assert "posts.js" in by_path and not any(path.startswith("_system") for path in by_path)
    functions = {f["name"]: f for f in by_path["posts.js"]["functions"]}
    assert functions["list"]["udfType"] == "Query"
    assert functions["list"]["visibility"] == {"kind": "public"}
    assert isinstance(functions["list"]["lineno"], float)
    assert isinstance(by_path["posts.js"]["sourcePackageId"], str)
    validator = admin.query("_system/frontend/modules:argsValidator", function="posts:get")
    assert json.loads(validator)["type"] == "object"


def test_urls(admin, shared):
    assert admin.query("_system/cli/convexUrl:cloudUrl") == shared.url
    assert admin.query("_system/frontend/convexSiteUrl") == shared.site_url


# --- admin endpoints ----------------------------------------------------------------------------


def test_shapes2(admin):
    shapes = admin.http.get("/api/shapes2").json()
    posts = shapes["posts"]
    assert posts["type"] == "Object"
    fields = {field["fieldName"]: field for field in posts["fields"]}
    assert [field["fieldName"] for field in posts["fields"]] == sorted(fields)
    assert fields["_id"]["shape"] == {"type": "Id", "tableName": "posts"}
    assert fields["authorId"]["shape"] == {"type": "Id", "tableName": "users"}
    assert fields["_creationTime"]["shape"] == {"type": "Float64", "float64Range": {"hasSpecialValues": False}}
    assert fields["title"] == {"fieldName": "title", "optional": False, "shape": {"type": "String"}}
    assert fields["published"]["shape"] == {"type": "Boolean"}


def test_shapes2_unions_and_optional_fields(filtered):
    people = filtered.http.get("/api/shapes2").json()["people"]
    fields = {field["fieldName"]: field for field in people["fields"]}
    assert fields["age"]["optional"] is True and fields["name"]["optional"] is False
    assert fields["big"]["shape"] == {"type": "Int64"}
    assert fields["tags"]["shape"] == {"type": "Array", "shape": {"type": "String"}}
    assert fields["nick"]["shape"] == {"type": "Null"}


def test_get_indexes_and_delete_tables(fresh):
    indexes = fresh.http.get("/api/get_indexes").json()["indexes"]
    assert {"table": "posts", "name": "by_author", "fields": ["authorId"], "backfill": {"state": "done"}, "staged": False} in indexes
    assert fresh.mutation("_system/frontend/addDocument", table="scratch", documents=[{"a": 1.0}]) == {"success": True}
    assert fresh.http.post("/api/delete_tables", json={"tableNames": ["scratch"]}).status_code == 200
    assert fresh.query("_system/cli/tableSize", tableName="scratch") == 0.0


def test_admin_endpoints_need_admin(shared):
    with httpx.Client(base_url=shared.url) as http:
        for path in ("/api/shapes2", "/api/get_indexes", "/api/stream_function_logs?cursor=0"):
            response = http.get(path)
            assert response.status_code == 403 and response.json()["code"] == "BadDeployKey"


# --- function logs ------------------------------------------------------------------------------


def test_stream_function_logs_long_poll(fresh):
    fresh.query("posts:list")
    start = fresh.http.get("/api/stream_function_logs", params={"cursor": 0}).json()
    assert start["entries"][-1]["identifier"] == "posts:list"
    cursor = start["newCursor"]
    results = {}

    def poll():
        results["body"] = fresh.http.get("/api/stream_function_logs", params={"cursor": cursor}).json()

    waiter = threading.Thread(target=poll)
    waiter.start()
    deadline = time.monotonic() + 10
    while not fresh.emulator.deployment.executions._waiters and time.monotonic() < deadline:
        time.sleep(0.01)  # wait until the poll is parked, so it is woken by the mutation
    fresh.mutation("users:createUser", clerkId="logged", email="l@x")
    waiter.join(timeout=30)
    entries = results["body"]["entries"]
    assert results["body"]["newCursor"] > cursor
    completion = next(e for e in entries if e["identifier"] == "users:createUser")
    assert completion["kind"] == "Completion" and completion["udfType"] == "Mutation"
    assert completion["error"] is None


def test_log_lines_structured_only_for_cli_and_dashboard(fresh):
    fresh.call("action", "emails:sendTestEmail", {"to": "someone@example.com"})
    structured = fresh.http.get("/api/stream_function_logs", params={"cursor": 0}).json()
    plain = fresh.http.get(
        "/api/app_metrics/stream_function_logs", params={"cursor": 0}, headers={"Convex-Client": "npm-1.45.0"}
    ).json()
    dashboard = fresh.http.get(
        "/api/app_metrics/stream_function_logs", params={"cursor": 0}, headers={"Convex-Client": "dashboard-0.0.0"}
    ).json()

    def lines(body):
        return [line for entry in body["entries"] for line in entry["logLines"]]

    assert lines(plain) and all(isinstance(line, str) for line in lines(plain))
    assert any(line.startswith("[INFO] Sending email to someone@example.com") for line in lines(plain))
    for body in (structured, dashboard):
        line = next(line for line in lines(body) if "someone@example.com" in line["messages"][0])
        assert line["level"] == "INFO" and line["isTruncated"] is False and isinstance(line["timestamp"], int)


def test_table_mapping_names_scheduled_jobs_like_convex(fresh):
    fresh.mutation("users:createUser", clerkId="mapped", email="m@x")  # schedules a welcome email
    mapping = fresh.query("_system/frontend/getTableMapping")
    jobs = fresh.query("_system/cli/tableData", table="_scheduled_functions", order="desc", paginationOpts=page_opts())
    assert jobs["page"], "createUser schedules a job"
    number = str(ids.decode_id(jobs["page"][0]["_id"])[0])
    assert mapping[number] == "_scheduled_jobs"
    assert not any(name.startswith("_") and name not in ("_scheduled_jobs", "_file_storage") for name in mapping.values())
    listed = fresh.query("_system/frontend/listById", ids=[{"id": jobs["page"][0]["_id"], "tableName": "_scheduled_jobs"}])
    assert listed[0]["_id"] == jobs["page"][0]["_id"]
