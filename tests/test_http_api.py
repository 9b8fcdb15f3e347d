"""The HTTP function API over real sockets: routes, formats, CORS, auth, and every bad input."""

from __future__ import annotations

import base64
import json

import httpx
import pytest

from console.emulator.server import start_emulator

N_POSTS = 30


@pytest.fixture(scope="module")
def shared():
    emulator = start_emulator(seed=N_POSTS)
    yield emulator
    emulator.stop()


@pytest.fixture
def client(shared):
    with httpx.Client(base_url=shared.url, timeout=30) as http:
        yield http


@pytest.fixture
def admin(shared):
    return {"Authorization": f"Convex {shared.admin_key}"}


def post_ids(client, admin) -> list[str]:
    body = {"path": "posts:list", "args": {"limit": 1000.0}, "format": "json"}
    return [p["_id"] for p in client.post("/api/query", json=body).json()["value"]]


def assert_still_serving(client, admin, expected_posts: int = N_POSTS):
    """The server answers and nothing committed was lost."""
    assert client.get("/version").status_code == 200
    body = {"path": "_system/cli/tableSize", "args": {"tableName": "posts"}, "format": "json"}
    assert client.post("/api/query", json=body, headers=admin).json()["value"] >= expected_posts


# --- meta routes ------------------------------------------------------------------------


def test_meta_routes(client, shared):
    assert client.get("/").text == "This Convex deployment is running. See https://docs.convex.dev/."
    assert client.get("/version").status_code == 200
    assert client.get("/instance_name").text == shared.deployment.instance_name
    assert client.get("/instance_version").status_code == 200


def test_unknown_route_is_404(client):
    response = client.get("/api/nope")
    assert response.status_code == 404
    assert client.post("/nothing/here", json={}).status_code == 404


def test_check_admin_key(client, admin):
    assert client.get("/api/check_admin_key", headers=admin).json() == {
        "success": True,
        "allowedOps": [],
        "isReadOnly": False,
    }
    response = client.get("/api/check_admin_key")
    assert response.status_code == 403
    assert response.json()["code"] == "BadDeployKey"


def test_admin_key_in_query_param(client, shared):
    response = client.get("/api/check_admin_key", params={"adminKey": shared.admin_key})
    assert response.status_code == 200


# --- CORS ---------------------------------------------------------------------------------


def test_cors_preflight_mirrors_origin_and_headers(client):
    response = client.options(
        "/api/query",
        headers={
            "Origin": "https://app.example.com",
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "content-type,authorization,convex-client",
        },
    )
    assert response.status_code == 200
    assert response.headers["access-control-allow-origin"] == "https://app.example.com"
    assert response.headers["access-control-allow-credentials"] == "true"
    assert response.headers["access-control-allow-headers"] == "content-type,authorization,convex-client"
    assert set(response.headers["access-control-allow-methods"].split(",")) == {
        "GET", "POST", "OPTIONS", "PATCH", "DELETE", "PUT"
    }
    assert response.headers["access-control-max-age"] == "86400"


def test_cors_on_responses_and_errors(client):
    origin = {"Origin": "http://localhost:5173"}
    ok = client.post("/api/query", json={"path": "posts:list", "args": {}}, headers=origin)
    bad = client.post("/api/query", content=b"{", headers={**origin, "Content-Type": "application/json"})
    for response in (ok, bad):
        assert response.headers["access-control-allow-origin"] == "http://localhost:5173"
        assert response.headers["access-control-allow-credentials"] == "true"


# --- running functions -------------------------------------------------------------------


def test_query_mutation_action(client, admin):
    created = client.post(
        "/api/mutation", json={"path": "users:createUser", "args": {"clerkId": "http_1", "email": "a@b.c"}}
    ).json()
    assert created["status"] == "success"
    user_id = created["value"]
    found = client.post("/api/query", json={"path": "users:getByClerkId", "args": {"clerkId": "http_1"}}).json()
    assert found["value"]["_id"] == user_id
    sent = client.post("/api/action", json={"path": "emails:sendTestEmail", "args": {"to": "x@y.z"}}).json()
    assert sent["status"] == "success"
    listed = client.post("/api/query", json={"path": "emails:listSentTo", "args": {"to": "x@y.z"}}).json()
    assert [e["_id"] for e in listed["value"]] == [sent["value"]]


def test_args_as_positional_array(client):
    response = client.post("/api/query", json={"path": "posts:list", "args": [{"limit": 2.0}]}).json()
    assert response["status"] == "success" and len(response["value"]) == 2


def test_path_canonicalisation(client):
    for path in ("posts:list", "posts.js:list"):
        assert client.post("/api/query", json={"path": path, "args": {}}).json()["status"] == "success"


PROBE_PAGE = {
    "path": "_system/cli/tableData",
    "args": {"table": "probe", "order": "asc", "paginationOpts": {"numItems": 5.0, "cursor": None}},
}


@pytest.fixture(scope="module")
def probe(shared):
    """A table holding one int64 and one bytes value, whose encoding shows the format used."""
    with httpx.Client(base_url=shared.url) as http:
        body = {
            "path": "_system/frontend/addDocument",
            "args": {"table": "probe", "documents": [{"n": {"$integer": "AQAAAAAAAAA="}, "b": {"$bytes": "AAE="}}]},
        }
        assert http.post("/api/mutation", json=body, headers={"Authorization": f"Convex {shared.admin_key}"}).json() == {
            "status": "success",
            "value": {"success": True},
        }


@pytest.mark.parametrize(
    "client_header, expected",
    [
        (None, "json"),
        ("npm-1.45.0", "json"),
        ("npm-1.4.1", "encoded"),
        ("npm-cli-1.20.0", "json"),
        ("npm-cli-1.0.0", "encoded"),
        ("python-0.8.1", "json"),
        ("python-convex-0.5.0", "encoded"),
        ("dashboard-0.0.0", "json"),
        ("my-tool-9.9.9", "json"),
    ],
)
def test_default_format_by_client_header(client, admin, probe, client_header, expected):
    headers = dict(admin)
    if client_header:
        headers["Convex-Client"] = client_header
    doc = client.post("/api/query", json=PROBE_PAGE, headers=headers).json()["value"]["page"][0]
    if expected == "json":
        assert (doc["n"], doc["b"]) == ("1", "AAE=")
    else:
        assert (doc["n"], doc["b"]) == ({"$integer": "AQAAAAAAAAA="}, {"$bytes": "AAE="})


@pytest.mark.parametrize(
    "fmt, n, b",
    [
        ("json", "1", "AAE="),
        ("convex_clean_json", "1", "AAE="),
        ("convex_encoded_json", {"$integer": "AQAAAAAAAAA="}, {"$bytes": "AAE="}),
        ("convex_json", {"$integer": "AQAAAAAAAAA="}, {"$bytes": "AAE="}),
        ("export_json", 1, {"$bytes": "AAE="}),
    ],
)
def test_explicit_format(client, admin, probe, fmt, n, b):
    doc = client.post("/api/query", json={**PROBE_PAGE, "format": fmt}, headers=admin).json()["value"]["page"][0]
    assert (doc["n"], doc["b"]) == (n, b)


def test_unknown_format_is_400(client, admin):
    response = client.post("/api/query", json={**PROBE_PAGE, "format": "yaml"}, headers=admin)
    assert response.status_code == 400
    assert response.json() == {"code": "BadFormat", "message": "format param must be one of [`json`]. Got yaml"}


def test_run_by_url_path(client):
    response = client.post("/api/run/posts/list", json={"args": {"limit": 1.0}})
    assert response.json()["status"] == "success" and len(response.json()["value"]) == 1
    missing = client.post("/api/run/list", json={"args": {}})
    assert missing.status_code == 400
    assert missing.json() == {
        "code": "MissingIdentifier",
        "message": "Path or function name not provided in path, e.g. /api/run/messages/list",
    }


def test_function_route_needs_admin(client, admin):
    body = {"path": "posts:countAll", "args": {}}
    assert client.post("/api/function", json=body, headers=admin).json()["status"] == "success"
    denied = client.post("/api/function", json=body)
    assert denied.status_code == 403 and denied.json()["code"] == "BadDeployKey"


def test_internal_functions_need_admin(client, admin):
    body = {"path": "posts:countAll", "args": {}}
    public = client.post("/api/query", json=body).json()
    assert public["status"] == "error"
    assert "Could not find public function for 'posts:countAll'" in public["errorMessage"]
    assert client.post("/api/query", json=body, headers=admin).json()["status"] == "success"


def test_system_functions_need_admin(client):
    body = {"path": "_system/cli/tables", "args": {"paginationOpts": {"numItems": 10.0, "cursor": None}}}
    response = client.post("/api/query", json=body).json()
    assert response["status"] == "error"


def test_query_batch_and_query_ts(client):
    body = {"queries": [{"path": "posts:list", "args": {"limit": 1.0}}, {"path": "nope:nothing", "args": {}}]}
    results = client.post("/api/query_batch", json=body).json()["results"]
    assert results[0]["status"] == "success" and results[1]["status"] == "error"
    ts = client.post("/api/query_ts").json()["ts"]
    assert len(base64.b64decode(ts)) == 8


def test_get_query_with_args_in_query_string(client):
    response = client.get("/api/query", params={"path": "posts:list", "args": json.dumps({"limit": 2.0})})
    assert response.json()["status"] == "success" and len(response.json()["value"]) == 2


def test_log_lines_and_convex_error_data(client):
    client.post("/api/mutation", json={"path": "users:createUser", "args": {"clerkId": "dup", "email": "d@x"}})
    again = client.post("/api/mutation", json={"path": "users:createUser", "args": {"clerkId": "dup", "email": "d@x"}})
    body = again.json()
    assert again.status_code == 200 and body["status"] == "error"
    assert body["errorData"] == {"code": "USER_EXISTS", "clerkId": "dup"}
    assert body["errorMessage"].startswith("[Request ID: ")


# --- bad input ---------------------------------------------------------------------------


def test_malformed_json(client, admin):
    response = client.post("/api/query", content=b'{"path": "posts:list", ', headers={"Content-Type": "application/json"})
    assert response.status_code == 400
    assert response.json()["code"] == "BadJsonBody"
    assert response.json()["message"].startswith("Failed to parse the request body as JSON: ")
    no_type = client.post("/api/query", content=b'{"path":"posts:list","args":{}}')
    assert no_type.status_code == 400
    assert no_type.json() == {"code": "BadJsonBody", "message": "Expected request with `Content-Type: application/json`"}
    missing = client.post("/api/query", json={"path": "posts:list"})
    assert missing.status_code == 400
    assert missing.json()["message"] == "Failed to deserialize the JSON body into the target type: missing field `args`"
    assert_still_serving(client, admin)


def test_unknown_function(client, admin):
    body = client.post("/api/query", json={"path": "posts:nope", "args": {}}).json()
    assert body["status"] == "error"
    assert "Could not find public function for 'posts:nope'" in body["errorMessage"]
    bad_path = client.post("/api/query", json={"path": "posts:no-pe", "args": {}})
    assert bad_path.status_code == 400
    assert bad_path.json()["code"] == "BadConvexFunctionIdentifier"
    assert bad_path.json()["message"].startswith("posts:no-pe is not a valid path to a Convex function.")
    wrong_type = client.post("/api/mutation", json={"path": "posts:list", "args": {}}).json()
    assert "Trying to execute posts.js:list as Mutation, but it is defined as Query." in wrong_type["errorMessage"]
    assert_still_serving(client, admin)


def test_wrong_argument_types(client, admin):
    body = client.post("/api/query", json={"path": "posts:list", "args": {"limit": "ten"}}).json()
    assert body["status"] == "error"
    assert "ArgumentValidationError" in body["errorMessage"] and "limit" in body["errorMessage"]
    not_object = client.post("/api/query", json={"path": "posts:list", "args": 5}).json()
    assert "Expected to receive an object as the function's argument" in not_object["errorMessage"]
    bad_value = client.post("/api/query", json={"path": "posts:list", "args": {"limit": {"$integer": "x"}}}).json()
    assert "Invalid arguments for posts.js:list" in bad_value["errorMessage"]
    assert_still_serving(client, admin)


def test_invalid_and_foreign_table_ids(client, admin):
    invalid = client.post("/api/query", json={"path": "posts:get", "args": {"id": "not-an-id"}}).json()
    assert invalid["status"] == "error"
    assert "ArgumentValidationError: Value does not match validator.\nPath: .id" in invalid["errorMessage"]
    user = client.post("/api/mutation", json={"path": "users:createUser", "args": {"clerkId": "foreign", "email": "f@x"}}).json()
    foreign = client.post("/api/query", json={"path": "posts:get", "args": {"id": user["value"]}}).json()
    assert foreign["status"] == "error"
    assert f'Found ID "{user["value"]}" from table `users`' in foreign["errorMessage"]
    assert 'v.id("posts")' in foreign["errorMessage"]
    assert_still_serving(client, admin)


def _add_document(client, admin, table, document):
    body = {"path": "_system/frontend/addDocument", "args": {"table": table, "documents": [document]}}
    return client.post("/api/mutation", json=body, headers=admin).json()


def test_reserved_field_names(client, admin):
    underscore = _add_document(client, admin, "emails", {"_secret": 1.0})
    assert underscore["status"] == "error"
    assert "Field '_secret' starts with an underscore" in underscore["errorData"]
    dollar = client.post(
        "/api/mutation",
        json={"path": "_system/frontend/addDocument", "args": {"table": "emails", "documents": [{"$x": 1.0, "y": 2.0}]}},
        headers=admin,
    ).json()
    assert dollar["status"] == "error"
    assert "Field name $x starts with '$', which is reserved." in dollar["errorMessage"]
    assert_still_serving(client, admin)


def test_document_over_one_mib(client, admin):
    body = _add_document(client, admin, "notes_big", {"blob": "x" * ((1 << 20) + 10)})
    assert body["status"] == "error"
    assert body["errorData"].startswith("Document is too large (")
    assert "maximum size 1048576 bytes" in body["errorData"]
    assert_still_serving(client, admin)


def test_body_over_16_mib(client, admin):
    body = b'{"path":"posts:list","args":{"x":"' + b"a" * ((1 << 24) + 2000) + b'"}}'
    response = client.post("/api/query", content=body, headers={"Content-Type": "application/json"})
    assert response.status_code == 413
    assert response.json()["code"] == "BadJsonBody"
    assert_still_serving(client, admin)


def test_unknown_table(client, admin):
    size = client.post("/api/query", json={"path": "_system/cli/tableSize", "args": {"tableName": "ghosts"}}, headers=admin).json()
    assert size == {"status": "success", "value": 0.0}
    data = client.post(
        "/api/query",
        json={"path": "_system/cli/tableData", "args": {"table": "ghosts", "order": "asc", "paginationOpts": {"numItems": 5.0, "cursor": None}}},
        headers=admin,
    ).json()
    assert data["status"] == "success" and data["value"]["page"] == []
    delete = client.post("/api/delete_tables", json={"tableNames": ["ghosts"]}, headers=admin)
    assert delete.status_code == 404 and delete.json()["code"] == "TableNotFound"
    assert_still_serving(client, admin)


def test_bad_admin_keys(client, admin, shared):
    body = {"path": "posts:list", "args": {}}
    wrong = client.post("/api/query", json=body, headers={"Authorization": "Convex convex-console|00ff"})
    assert wrong.status_code == 403
    assert wrong.json()["code"] == "BadDeployKey"
    assert wrong.json()["message"].startswith("The provided deploy key was invalid for deployment 'convex-console'.")
    short = client.post("/api/query", json=body, headers={"Authorization": "abc"})
    assert short.status_code == 400
    assert short.json() == {"code": "InvalidHeaderFailure", "message": "Invalid authentication header"}
    basic = client.post("/api/query", json=body, headers={"Authorization": "Basic dXNlcjpwYXNz"})
    assert basic.status_code == 400
    assert basic.json() == {"code": "InvalidAdminKey", "message": "Invalid admin key"}
    acting = client.post(
        "/api/query", json=body, headers={"Authorization": f"Convex {shared.admin_key}:%%%notbase64"}
    )
    assert acting.status_code == 400
    assert acting.json() == {"code": "HeaderParseFailure", "message": "Malformed Authorization header."}
    assert_still_serving(client, admin)


def test_prefix_is_case_insensitive(client, shared):
    response = client.get("/api/check_admin_key", headers={"Authorization": f"CONVEX {shared.admin_key}"})
    assert response.status_code == 200


def test_acting_as_user(client, shared):
    identity = base64.b64encode(json.dumps({"subject": "user_7", "issuer": "https://issuer.example"}).encode()).decode()
    headers = {"Authorization": f"Convex {shared.admin_key}:{identity}"}
    viewer = client.post("/api/query", json={"path": "users:viewer", "args": {}}, headers=headers).json()
    assert viewer["status"] == "success"
    assert viewer["value"]["tokenIdentifier"] == "https://issuer.example|user_7"
    anonymous = client.post("/api/query", json={"path": "users:viewer", "args": {}}).json()
    assert anonymous["value"] is None


def test_bearer_without_providers_is_401(emulator_factory):
    emulator = emulator_factory()
    auth = emulator.deployment.admin_auth
    auth.providers = lambda: []
    auth.token_verifier = None
    payload = base64.urlsafe_b64encode(json.dumps({"iss": "https://x", "sub": "1"}).encode()).rstrip(b"=").decode()
    token = f"eyJhbGciOiJSUzI1NiJ9.{payload}.sig"
    with httpx.Client(base_url=emulator.url) as http:
        response = http.post("/api/query", json={"path": "posts:list", "args": {}}, headers={"Authorization": f"Bearer {token}"})
        assert response.status_code == 401
        assert response.json() == {
            "code": "NoAuthProvider",
            "message": "No auth provider found matching the given token (no providers configured). Check convex/auth.config.ts.",
        }
        garbage = http.post("/api/query", json={"path": "posts:list", "args": {}}, headers={"Authorization": "Bearer nope"})
        assert garbage.status_code == 401 and garbage.json()["code"] == "InvalidAuthHeader"


def test_chunked_body_over_16_mib(client, admin):
    def chunks():
        yield b'{"path":"posts:list","args":{"x":"'
        for _ in range(17):
            yield b"a" * (1 << 20)
        yield b'"}}'

    response = client.post("/api/query", content=chunks(), headers={"Content-Type": "application/json"})
    assert response.status_code == 413
    assert response.json() == {"code": "BadJsonBody", "message": "Failed to buffer the request body: length limit exceeded"}
    assert_still_serving(client, admin)
