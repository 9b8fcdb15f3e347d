"""The demo app through the runner on a temporary engine, and the seeder."""

import threading

import pytest

from console.emulator.app import load_app
from console.emulator.engine import Database
from console.emulator.identity import Identity
from console.emulator.runtime import FunctionRunner, Services
from console.emulator.seed import seed

ADMIN = Identity.admin()
ANON = Identity.anonymous()


class RecordingScheduler:
    """A stand-in scheduler service: records jobs so the test can run them by hand."""

    def __init__(self):
        self.jobs = []

    def schedule(self, path, args, ts_ms, *, tx=None):
        self.jobs.append((path, args))
        return f"job-{len(self.jobs)}"

    def cancel(self, job_id, *, tx=None):
        pass


@pytest.fixture(scope="module")
def app():
    return load_app("console.emulator.demo")


@pytest.fixture
def db(app):
    database = Database.open(None)
    database.set_schema(app.schema)
    yield database
    database.close()


@pytest.fixture
def scheduler():
    return RecordingScheduler()


@pytest.fixture
def runner(db, app, scheduler):
    function_runner = FunctionRunner(db, app, services=Services(scheduler=scheduler))
    yield function_runner
    function_runner.close()


def call(runner, path, args=None, identity=ADMIN, **kwargs):
    outcome = runner.run(path, args or {}, identity=identity, **kwargs)
    assert outcome.ok, outcome.error_message
    return outcome.value


def make_user(runner, clerk_id="user_1", email="ada@example.com", name="Ada"):
    return call(runner, "users:createUser", {"clerkId": clerk_id, "email": email, "name": name})


def test_app_layout(app):
    expected = {
        "users.js:createUser", "users.js:getByClerkId", "users.js:getByEmail",
        "users.js:list", "users.js:viewer", "users.js:getById",
        "posts.js:list", "posts.js:get", "posts.js:paginate", "posts.js:getByAuthor", "posts.js:listPublished",
        "posts.js:create", "posts.js:update", "posts.js:publish", "posts.js:unpublish", "posts.js:deletePost",
        "posts.js:countByAuthor", "comments.js:add", "comments.js:listForPost",
        "counters.js:increment", "counters.js:get",
    }
    assert expected <= set(app.functions)
    assert app.functions["users.js:getById"].visibility == "internal"
    assert app.functions["posts.js:countByAuthor"].visibility == "internal"
    assert app.functions["actions.js:sendWelcomeEmail"].udf_type == "action"
    assert all(f.args is not None for f in app.user_functions())  # args validators everywhere
    tables = {t["tableName"]: t for t in app.schema.export()["tables"]}
    assert {i["indexDescriptor"]: i["fields"] for i in tables["posts"]["indexes"]} == {
        "by_author": ["authorId"],
        "by_published": ["published"],
        "by_author_and_published": ["authorId", "published"],
    }
    assert set(tables) == {"users", "posts", "comments", "files", "emails", "counters"}
    assert app.schema.export()["schemaValidation"] is True


def test_users(runner):
    user_id = make_user(runner)
    assert call(runner, "users:getByClerkId", {"clerkId": "user_1"})["_id"] == user_id
    assert call(runner, "users:getByEmail", {"email": "ada@example.com"})["name"] == "Ada"
    assert call(runner, "users:getByClerkId", {"clerkId": "nobody"}) is None
    duplicate = runner.run("users:createUser", {"clerkId": "user_1", "email": "x@y.z"}, identity=ADMIN)
    assert duplicate.is_convex_error and duplicate.error_data == {"code": "USER_EXISTS", "clerkId": "user_1"}
    assert [u["_id"] for u in call(runner, "users:list")] == [user_id]
    assert call(runner, "users:getById", {"id": user_id})["clerkId"] == "user_1"
    hidden = runner.run("users:getById", {"id": user_id}, identity=ANON)
    assert "Could not find public function for 'users:getById'" in hidden.error_message


def test_viewer(runner):
    assert call(runner, "users:viewer", identity=ANON) is None
    identity = call(runner, "users:viewer", identity=Identity.acting_as({"subject": "user_1", "issuer": "https://clerk.example", "email": "ada@example.com"}))
    assert identity == {
        "subject": "user_1", "issuer": "https://clerk.example", "email": "ada@example.com",
        "tokenIdentifier": "https://clerk.example|user_1",
    }
    unauthorized = runner.run("users:me", {}, identity=ANON)
    assert "Uncaught Error: Unauthorized" in unauthorized.error_message


def test_posts_lifecycle(runner):
    author = make_user(runner)
    other = make_user(runner, "user_2", "grace@example.com", "Grace")
    first = call(runner, "posts:create", {"title": "One", "content": "c1", "authorId": author})
    second = call(runner, "posts:create", {"title": "Two", "content": "c2", "authorId": author, "published": True})
    call(runner, "posts:create", {"title": "Three", "content": "c3", "authorId": other})

    assert [p["title"] for p in call(runner, "posts:list")] == ["Three", "Two", "One"]
    assert call(runner, "posts:get", {"id": first})["published"] is False
    assert sorted(p["title"] for p in call(runner, "posts:getByAuthor", {"authorId": author})) == ["One", "Two"]
    assert call(runner, "posts:countByAuthor", {"authorId": author}) == 2.0

    call(runner, "posts:publish", {"id": first})
    published = call(runner, "posts:listPublished", {"paginationOpts": {"numItems": 10.0, "cursor": None}})
    assert [p["title"] for p in published["page"]] == ["Two", "One"] and published["isDone"]
    call(runner, "posts:unpublish", {"id": second})
    assert [p["title"] for p in call(runner, "posts:getByAuthorAndStatus", {"authorId": author, "published": True})] == ["One"]

    call(runner, "posts:update", {"id": first, "title": "One (edited)"})
    edited = call(runner, "posts:get", {"id": first})
    assert edited["title"] == "One (edited)" and edited["content"] == "c1" and edited["updatedAt"] >= edited["createdAt"]

    comment = call(runner, "comments:add", {"postId": first, "authorId": other, "body": "Nice"})
    assert [c["_id"] for c in call(runner, "comments:listForPost", {"postId": first})] == [comment]
    call(runner, "posts:deletePost", {"id": first})
    assert call(runner, "posts:get", {"id": first}) is None
    assert call(runner, "comments:listForPost", {"postId": first}) == []
    missing = runner.run("posts:publish", {"id": first}, identity=ADMIN)
    assert missing.is_convex_error and missing.error_data["code"] == "POST_NOT_FOUND"


def test_wrong_table_id_is_rejected(runner):
    author = make_user(runner)
    outcome = runner.run("posts:get", {"id": author}, identity=ADMIN)
    assert outcome.status == "error" and "ArgumentValidationError" in outcome.error_message
    assert 'v.id("posts")' in outcome.error_message


def test_paginate_all_posts(runner):
    author = make_user(runner)
    created = {call(runner, "posts:create", {"title": f"P{i}", "content": "x", "authorId": author}) for i in range(11)}
    seen, cursor, done = [], None, False
    while not done:
        page = call(runner, "posts:paginate", {"paginationOpts": {"numItems": 4.0, "cursor": cursor}})
        seen += [p["_id"] for p in page["page"]]
        cursor, done = page["continueCursor"], page["isDone"]
    assert len(seen) == 11 and set(seen) == created


def test_create_user_schedules_the_welcome_email(runner, scheduler):
    user_id = make_user(runner, "u9", "new@example.com", "New")
    assert call(runner, "users:getById", {"id": user_id})["email"] == "new@example.com"
    assert scheduler.jobs == [("actions.js:sendWelcomeEmail", {"email": "new@example.com", "name": "New"})]
    path, args = scheduler.jobs[0]
    outcome = runner.run(path, args, identity=Identity.system(), caller="scheduler")
    assert outcome.ok, outcome.error_message
    assert any("new@example.com" in line for line in outcome.log_line_strings)
    sent = call(runner, "emails:listSentTo", {"to": "new@example.com"})
    assert [e["subject"] for e in sent] == ["Welcome!"] and sent[0]["_id"] == outcome.value


def test_duplicate_user_schedules_no_email(runner, scheduler):
    make_user(runner)
    duplicate = runner.run("users:createUser", {"clerkId": "user_1", "email": "x@y.z"}, identity=ADMIN)
    assert duplicate.status == "error" and len(scheduler.jobs) == 1


def test_counter_increments_are_never_lost(runner):
    errors = []

    def worker():
        for _ in range(25):
            outcome = runner.run("counters:increment", {"name": "hits"}, identity=ANON)
            if not outcome.ok:
                errors.append(outcome.error_message)

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert call(runner, "counters:get", {"name": "hits"}) == 200.0


def test_seed_counts_and_determinism(app):
    snapshots = []
    for _ in range(2):
        database = Database.open(None)
        database.set_schema(app.schema)
        report = seed(database, 200, validate=True)
        assert (report.users, report.posts, report.comments) == (20, 200, 40)

        def snapshot(tx):
            counts = {t: tx.count(t) for t in ("users", "posts", "comments")}
            posts = tx.collect({"source": {"type": "FullTableScan", "tableName": "posts", "order": None}, "operators": []})
            users = tx.collect({"source": {"type": "FullTableScan", "tableName": "users", "order": None}, "operators": []})
            author_rank = {u["_id"]: u["clerkId"] for u in users}
            rows = [(p["title"], p["content"], p["published"], p["createdAt"], author_rank[p["authorId"]]) for p in posts]
            return counts, rows, [u["email"] for u in users]

        snapshots.append(database.read(snapshot))
        database.close()
    assert snapshots[0][0] == {"users": 20, "posts": 200, "comments": 40}
    assert snapshots[0] == snapshots[1]


def test_storage_needs_its_service(runner):
    outcome = runner.run("files:generateUploadUrl", {}, identity=ANON)
    assert outcome.status == "error" and "storage service is not available" in outcome.error_message
