"""FunctionRunner on a real engine: access rules, validation messages, errors, logs, actions."""

import asyncio
import logging
import os
import sys
import threading
import time

import pytest

from console.emulator.app import App, canonicalize_path, strip_path
from console.emulator.engine import Database
from console.emulator.errors import ApiError
from console.emulator.functions import (
    ConvexError,
    action,
    internal_query,
    mutation,
    query,
)
from console.emulator.identity import Identity
from console.emulator.runtime import FunctionRunner, Services
from console.emulator.executions import ExecutionEntry, ExecutionLog
from console.emulator.validators import pagination_opts_validator, v
from console.values import UNDEFINED

logger = logging.getLogger(__name__)
ADMIN = Identity.admin()
ANON = Identity.anonymous()


# ---------------------------------------------------------------------------
# The functions under test (registered as module `fns.js`)


@query(args={"id": v.id("items")}, returns=v.union(v.object({"_id": v.id("items"), "_creationTime": v.number(), "n": v.number()}), v.null()))
def get(ctx, args):
    return ctx.db.get(args["id"])


@query(args={})
def listAll(ctx, args):
    return ctx.db.query("items").collect()


@mutation(args={"n": v.number()}, returns=v.id("items"))
def add(ctx, args):
    return ctx.db.insert("items", {"n": args["n"]})


@mutation(args={"n": v.number()})
def addThenFail(ctx, args):
    ctx.db.insert("items", {"n": args["n"]})
    raise Exception("boom after insert")


@mutation(args={"n": v.number()}, returns=v.string())
def addBadReturn(ctx, args):
    ctx.db.insert("items", {"n": args["n"]})
    return 42.0


@mutation(args={})
def failWithData(ctx, args):
    raise ConvexError({"code": "NOPE", "count": 3})


@internal_query(args={})
def secret(ctx, args):
    return "internal"


@query(args={"tag": v.string(), "lines": v.number()})
def chatty(ctx, args):
    for i in range(int(args["lines"])):
        print(f"{args['tag']} {i}")
        time.sleep(0.001)
    return args["tag"]


@query(args={})
def levels(ctx, args):
    print("plain", "print")
    print("to stderr", file=sys.stderr)
    logger.debug("dbg %d", 1)
    logger.info("info")
    logger.warning("careful")
    logger.error("bad")
    return None


@query(args={})
def insertInQuery(ctx, args):
    return ctx.db.insert("items", {"n": 1.0})


@mutation(args={})
def actionFromMutation(ctx, args):
    return ctx.run_action("fns:work", {})


@query(args={"paginationOpts": pagination_opts_validator})
def twoPages(ctx, args):
    ctx.db.query("items").paginate(args["paginationOpts"])
    return ctx.db.query("items").paginate(args["paginationOpts"])


@query(args={"paginationOpts": pagination_opts_validator})
def page(ctx, args):
    return ctx.db.query("items").order("desc").paginate(args["paginationOpts"])


@mutation(args={})
def scheduleLater(ctx, args):
    return ctx.scheduler.run_after(1000, "fns:add", {"n": 1.0})


@action(args={"n": v.number()})
def work(ctx, args):
    print("action starts")
    new_id = ctx.run_mutation("fns:add", {"n": args["n"]})
    doc = ctx.run_query(get, {"id": new_id})
    secret_value = ctx.run_query("fns:secret", {})
    try:
        ctx.run_mutation("fns:failWithData", {})
    except ConvexError as error:
        caught = error.data
    return {"doc": doc, "secret": secret_value, "caught": caught}


@query(args={})
def whoami(ctx, args):
    return ctx.auth.get_user_identity()


@query(args={})
def envValue(ctx, args):
    return ctx.env.get("GREETING")


@query(args={})
def uniqueOfMany(ctx, args):
    return ctx.db.query("items").unique()


@query(args={})
def returnsQuery(ctx, args):
    return ctx.db.query("items")


@mutation(args={"id": v.id("items")})
def reshape(ctx, args):
    ctx.db.patch(args["id"], {"extra": "x", "n": UNDEFINED})
    patched = ctx.db.get(args["id"])
    ctx.db.replace("items", args["id"], {"n": 9.0})
    replaced = ctx.db.get("items", args["id"])
    normalized = ctx.db.normalize_id("items", args["id"])
    count = ctx.db.query("items").count()
    storage = ctx.db.system.query("_storage").collect()
    ctx.db.delete(args["id"])
    return {"patched": patched, "replaced": replaced, "normalized": normalized, "count": count,
            "storage": storage, "after": ctx.db.get(args["id"])}


@query(args={})
def rootLevels(ctx, args):
    logging.debug("root debug %d", 1)
    logging.info("root info")
    logging.getLogger("tests.unconfigured.child").info("child info")
    logging.warning("root warning")
    return None


@mutation(args={"n": v.number()})
def addThenFailNested(ctx, args):
    ctx.db.insert("items", {"n": args["n"]})
    raise ConvexError("child failed")


@mutation(args={})
def parentCatchesChild(ctx, args):
    kept = ctx.db.insert("items", {"n": 1.0})
    try:
        ctx.run_mutation("fns:addThenFailNested", {"n": 2.0})
    except ConvexError as error:
        caught = error.data
    after = ctx.db.insert("items", {"n": 3.0})
    return {"kept": kept, "after": after, "caught": caught}


SEEN_EXECUTIONS = []


@action(args={})
def noteExecution(ctx, args):
    from console.emulator.runtime import current_execution

    SEEN_EXECUTIONS.append(current_execution())
    return None


@mutation(args={})
def addOther(ctx, args):
    return ctx.db.insert("others", {"x": 1.0})


@mutation(args={"name": v.string()})
def scheduleByName(ctx, args):
    return ctx.scheduler.run_after(0, args["name"], {})


@action(args={"seconds": v.number()})
def slowAction(ctx, args):
    time.sleep(args["seconds"])
    return "slept"


class RecordingScheduler:
    """A stand-in scheduler service that records what functions ask for."""

    def __init__(self):
        self.calls = []

    def schedule(self, path, args, ts_ms, *, tx=None):
        self.calls.append((path, args, ts_ms, tx is not None))
        return "job-1"

    def cancel(self, job_id, *, tx=None):
        self.calls.append(("cancel", job_id))


# ---------------------------------------------------------------------------
# Fixtures


@pytest.fixture
def db():
    database = Database.open(None)
    yield database
    database.close()


@pytest.fixture
def app():
    application = App("tests")
    application.source_dirs = [os.path.dirname(os.path.abspath(__file__))]
    application.add_module("fns", sys.modules[__name__])
    logger.setLevel(logging.DEBUG)
    return application


@pytest.fixture
def runner(db, app):
    function_runner = FunctionRunner(db, app, env_provider=lambda: {"GREETING": "hello"})
    yield function_runner
    function_runner.close()


def add_item(runner, n=1.0):
    outcome = runner.run("fns:add", {"n": n}, identity=ADMIN)
    assert outcome.ok, outcome.error_message
    return outcome.value


# ---------------------------------------------------------------------------
# Paths


def test_canonicalize_path_rules():
    assert canonicalize_path("posts:list") == "posts.js:list"
    assert canonicalize_path("posts.js:list") == "posts.js:list"
    assert canonicalize_path("dir/mod:fn") == "dir/mod.js:fn"
    assert canonicalize_path("mod") == "mod.js:default"
    assert strip_path("mod.js:default") == "mod"
    assert strip_path("dir/mod.js:fn") == "dir/mod:fn"
    for bad in ("posts.ts:list", "posts:li-st", "posts:", "/abs:fn", "a b:c", ":fn"):
        with pytest.raises(ApiError) as raised:
            canonicalize_path(bad)
        assert raised.value.status == 400 and raised.value.code == "BadConvexFunctionIdentifier"
        assert "is not a valid path to a Convex function" in raised.value.message


def test_registration(app):
    registered = app.functions["fns.js:add"]
    assert registered.udf_type == "mutation" and registered.visibility == "public"
    assert registered.args == {"type": "object", "value": {"n": {"fieldType": {"type": "number"}, "optional": False}}}
    assert registered.returns == {"type": "id", "tableName": "items"}
    assert app.functions["fns.js:secret"].visibility == "internal"
    assert add.path == "fns.js:add"


# ---------------------------------------------------------------------------
# Access and validation


def test_unknown_function(runner):
    outcome = runner.run("fns:lisst", {}, identity=ADMIN)
    assert outcome.status == "error"
    assert outcome.error_message.startswith(f"[Request ID: {outcome.request_id}] Server Error\n")
    assert "Could not find public function for 'fns:lisst'. Did you forget to run `npx convex dev` or `npx convex deploy`?" in outcome.error_message


def test_internal_functions_need_admin(runner):
    for identity in (ANON, Identity.user({"issuer": "https://i", "subject": "u1"})):
        outcome = runner.run("fns:secret", {}, identity=identity)
        assert outcome.status == "error" and "Could not find public function for 'fns:secret'" in outcome.error_message
    for identity in (ADMIN, Identity.acting_as({"subject": "u1"}), Identity.system()):
        assert runner.run("fns:secret", {}, identity=identity).value == "internal"


def test_system_functions_need_admin(db):
    application = App("sys")
    application.add_module("_system/cli/probe", sys.modules[__name__])
    runner = FunctionRunner(db, application)
    denied = runner.run("_system/cli/probe:secret", {}, identity=ANON)
    assert denied.status == "error" and "Operation Executing function not permitted" in denied.error_message
    assert runner.run("_system/cli/probe:secret", {}, identity=ADMIN).value == "internal"


def test_expected_type_mismatch(runner):
    outcome = runner.run("fns:add", {"n": 1.0}, identity=ADMIN, expected_type="query")
    assert "Trying to execute fns.js:add as Query, but it is defined as Mutation." in outcome.error_message
    assert runner.run("fns:listAll", {}, identity=ADMIN).value == []


def test_argument_validation_messages(runner):
    missing = runner.run("fns:get", {}, identity=ADMIN)
    assert (
        "ArgumentValidationError: Object is missing the required field `id`. Consider wrapping the field "
        "validator in `v.optional(...)` if this is expected." in missing.error_message
    )
    wrong = runner.run("fns:add", {"n": "seven"}, identity=ADMIN)
    assert "ArgumentValidationError: Value does not match validator." in wrong.error_message
    assert "Path: .n" in wrong.error_message and 'Value: "seven"' in wrong.error_message
    extra = runner.run("fns:add", {"n": 1.0, "m": 2.0}, identity=ADMIN)
    assert "extra field `m`" in extra.error_message
    not_object = runner.run("fns:add", [1.0], identity=ADMIN)
    assert "Expected to receive an object as the function's argument" in not_object.error_message


def test_int_is_not_a_number(runner):
    outcome = runner.run("fns:add", {"n": 1}, identity=ADMIN)
    assert outcome.status == "error" and "Path: .n" in outcome.error_message


def test_returns_validation_rolls_back(runner):
    outcome = runner.run("fns:addBadReturn", {"n": 1.0}, identity=ADMIN)
    assert outcome.status == "error"
    assert "ReturnsValidationError: Value does not match validator." in outcome.error_message
    assert runner.run("fns:listAll", {}, identity=ADMIN).value == []


def test_mutation_that_raises_commits_nothing(runner):
    add_item(runner, 1.0)
    outcome = runner.run("fns:addThenFail", {"n": 2.0}, identity=ADMIN)
    assert outcome.status == "error" and outcome.commit_ts is None
    assert "Uncaught Error: boom after insert" in outcome.error_message
    assert "    at addThenFail (../tests/test_runtime.py:" in outcome.error_message
    assert [doc["n"] for doc in runner.run("fns:listAll", {}, identity=ADMIN).value] == [1.0]


def test_convex_error_data(runner):
    outcome = runner.run("fns:failWithData", {}, identity=ADMIN)
    assert outcome.status == "error" and outcome.is_convex_error
    assert outcome.error_data == {"code": "NOPE", "count": 3}
    assert 'Uncaught ConvexError: {"code":"NOPE","count":"3n"}' in outcome.error_message


def test_success_outcome_fields(runner):
    item = add_item(runner)
    mutation_outcome = runner.run("fns:add", {"n": 2.0}, identity=ADMIN)
    assert mutation_outcome.commit_ts and mutation_outcome.udf_type == "mutation"
    outcome = runner.run("fns:get", {"id": item}, identity=ADMIN)
    assert outcome.ok and outcome.value["_id"] == item and outcome.path == "fns.js:get"
    assert outcome.read_set is not None and outcome.duration > 0


# ---------------------------------------------------------------------------
# ctx rules


def test_insert_in_query_is_a_clear_error(runner):
    outcome = runner.run("fns:insertInQuery", {}, identity=ADMIN)
    assert "ctx.db.insert is not available in a query" in outcome.error_message


def test_run_action_from_mutation_points_to_scheduler(runner):
    outcome = runner.run("fns:actionFromMutation", {}, identity=ADMIN)
    assert "Actions cannot be called from mutations" in outcome.error_message
    assert "ctx.scheduler.run_after(0, ...)" in outcome.error_message


def test_single_paginate_per_function(runner):
    add_item(runner)
    outcome = runner.run("fns:twoPages", {"paginationOpts": {"numItems": 5.0, "cursor": None}}, identity=ADMIN)
    assert "This query or mutation function ran multiple paginated queries. Convex only supports a single paginated query in each function." in outcome.error_message


def test_paginate_walks_every_item_once(runner):
    made = {add_item(runner, float(i)) for i in range(7)}
    seen, cursor = [], None
    while True:
        outcome = runner.run("fns:page", {"paginationOpts": {"numItems": 3.0, "cursor": cursor}}, identity=ADMIN)
        assert outcome.ok, outcome.error_message
        seen.extend(doc["_id"] for doc in outcome.value["page"])
        cursor = outcome.value["continueCursor"]
        if outcome.value["isDone"]:
            break
    assert sorted(seen) == sorted(made) and len(seen) == 7


def test_unique_with_two_results(runner):
    add_item(runner)
    add_item(runner)
    outcome = runner.run("fns:uniqueOfMany", {}, identity=ADMIN)
    assert "unique() query returned more than one result from table items" in outcome.error_message


def test_returning_a_query_is_an_error(runner):
    outcome = runner.run("fns:returnsQuery", {}, identity=ADMIN)
    assert "Return value is a Query" in outcome.error_message


def test_missing_scheduler_service(runner):
    outcome = runner.run("fns:scheduleLater", {}, identity=ADMIN)
    assert outcome.status == "error" and "scheduler service is not available" in outcome.error_message


def test_scheduler_service_receives_canonical_path(db, app):
    scheduler = RecordingScheduler()
    runner = FunctionRunner(db, app, services=Services(scheduler=scheduler))
    before = runner.clock.now_ms()
    outcome = runner.run("fns:scheduleLater", {}, identity=ADMIN)
    assert outcome.value == "job-1"
    (path, args, ts_ms, in_tx), = scheduler.calls
    assert path == "fns.js:add" and args == {"n": 1.0} and in_tx
    assert before + 1000 <= ts_ms <= runner.clock.now_ms() + 1000


def test_scheduling_a_missing_function_names_what_is_missing(db, app):
    runner = FunctionRunner(db, app, services=Services(scheduler=RecordingScheduler()))
    missing_function = runner.run("fns:scheduleByName", {"name": "fns:nope"}, identity=ADMIN)
    assert ("Uncaught Error: Attempted to schedule function, but no exported function nope found in the "
            "file: fns.js. Did you forget to export it?") in missing_function.error_message
    missing_module = runner.run("fns:scheduleByName", {"name": "nowhere:fn"}, identity=ADMIN)
    assert "Attempted to schedule function at nonexistent path: nowhere.js" in missing_module.error_message
    assert runner.run("fns:scheduleByName", {"name": "fns:add"}, identity=ADMIN).value == "job-1"
    runner.close()


def test_wrap_tx_runs_in_the_functions_transaction(runner, db):
    def mark_done(tx, run):
        result = run(tx)
        tx.insert("marks", {"for": result})
        return result

    outcome = runner.run("fns:add", {"n": 4.0}, identity=ADMIN, wrap_tx=mark_done)
    assert outcome.ok, outcome.error_message
    marks = db.read(lambda tx: tx.collect({"source": {"type": "FullTableScan", "tableName": "marks", "order": "asc"}, "operators": []}))
    assert [m["for"] for m in marks] == [outcome.value]

    def refuse(tx, run):
        run(tx)
        raise RuntimeError("job no longer pending")

    failed = runner.run("fns:add", {"n": 5.0}, identity=ADMIN, wrap_tx=refuse)
    assert failed.status == "error" and "job no longer pending" in failed.error_message
    items = runner.run("fns:listAll", {}, identity=ADMIN).value
    assert [item["n"] for item in items] == [4.0]  # the refused mutation committed nothing
    action_outcome = runner.run("fns:work", {"n": 1.0}, identity=ADMIN, wrap_tx=mark_done)
    assert action_outcome.status == "error" and "has no transaction" in action_outcome.error_message


def test_failed_nested_mutation_rolls_back_only_its_own_writes(runner):
    outcome = runner.run("fns:parentCatchesChild", {}, identity=ADMIN)
    assert outcome.ok, outcome.error_message
    assert outcome.value["caught"] == "child failed"
    items = runner.run("fns:listAll", {}, identity=ADMIN).value
    assert sorted(item["n"] for item in items) == [1.0, 3.0]
    assert {item["_id"] for item in items} == {outcome.value["kept"], outcome.value["after"]}


def test_id_validation_sees_tables_created_after_the_first_call(runner):
    item = add_item(runner)
    assert runner.run("fns:get", {"id": item}, identity=ADMIN).ok
    other = runner.run("fns:addOther", {}, identity=ADMIN)  # creates table `others` now
    assert other.ok, other.error_message
    wrong = runner.run("fns:get", {"id": other.value}, identity=ADMIN)
    assert f'Found ID "{other.value}" from table `others`' in wrong.error_message


def test_current_execution_tells_runs_apart(runner):
    from console.emulator.runtime import current_execution

    SEEN_EXECUTIONS.clear()
    runner.run("fns:noteExecution", {}, identity=ADMIN)
    runner.run("fns:noteExecution", {}, identity=ADMIN)
    first, second = SEEN_EXECUTIONS
    assert first is not None and second is not None and first is not second
    assert current_execution() is None


def test_env_provider(runner):
    assert runner.run("fns:envValue", {}, identity=ADMIN).value == "hello"


def test_auth_identity(runner):
    assert runner.run("fns:whoami", {}, identity=ANON).value is None
    assert runner.run("fns:whoami", {}, identity=ADMIN).value is None
    user = runner.run("fns:whoami", {}, identity=Identity.user({"issuer": "https://clerk.dev", "subject": "u1", "email": "a@b.c"})).value
    assert user == {"issuer": "https://clerk.dev", "subject": "u1", "email": "a@b.c", "tokenIdentifier": "https://clerk.dev|u1"}
    acting = runner.run("fns:whoami", {}, identity=Identity.acting_as({"name": "Bob"})).value
    assert acting["issuer"] == "https://convex.test" and acting["name"] == "Bob"
    assert acting["tokenIdentifier"] == f"https://convex.test|{acting['subject']}"


def test_query_serialization_matches_the_js_library(runner):
    from console.emulator.functions import QueryInitializer

    built = (
        QueryInitializer(None, "messages")
        .with_index("by_channel", lambda q: q.eq("channel", "c").gt("_creationTime", 5.0).lte("_creationTime", 10.0))
        .order("desc")
        .filter(lambda q: q.and_(
            q.eq(q.field("author"), __import__("console.values", fromlist=["UNDEFINED"]).UNDEFINED),
            q.or_(q.gt(q.field("n"), 3), q.not_(q.neq(q.field("x.y"), None))),
            q.lt(q.add(q.field("a"), 1.0), q.mul(2.0, q.neg(q.field("b"))))))
        .limit(5)
    )
    assert built.serialized() == {
        "source": {"type": "IndexRange", "indexName": "messages.by_channel", "range": [
            {"type": "Eq", "fieldPath": "channel", "value": "c"},
            {"type": "Gt", "fieldPath": "_creationTime", "value": 5.0},
            {"type": "Lte", "fieldPath": "_creationTime", "value": 10.0}], "order": "desc"},
        "operators": [{"filter": {"$and": [
            {"$eq": [{"$field": "author"}, {"$literal": {"$undefined": None}}]},
            {"$or": [{"$gt": [{"$field": "n"}, {"$literal": {"$integer": "AwAAAAAAAAA="}}]},
                     {"$not": {"$neq": [{"$field": "x.y"}, {"$literal": None}]}}]},
            {"$lt": [{"$add": [{"$field": "a"}, {"$literal": 1.0}]},
                     {"$mul": [{"$literal": 2.0}, {"$neg": {"$field": "b"}}]}]}]}}, {"limit": 5}],
    }


def test_database_writer_operations(runner):
    item = add_item(runner, 1.0)
    result = runner.run("fns:reshape", {"id": item}, identity=ADMIN).value
    assert {k: result["patched"][k] for k in ("extra",)} == {"extra": "x"} and "n" not in result["patched"]
    assert result["replaced"]["n"] == 9.0 and "extra" not in result["replaced"]
    assert result["normalized"] == item and result["count"] == 1 and result["storage"] == []
    assert result["after"] is None
    assert runner.run("fns:listAll", {}, identity=ADMIN).value == []


# ---------------------------------------------------------------------------
# Logs


def test_log_levels(runner):
    outcome = runner.run("fns:levels", {}, identity=ADMIN)
    assert outcome.log_line_strings == [
        "[LOG] plain print",
        "[ERROR] to stderr",
        "[DEBUG] dbg 1",
        "[INFO] info",
        "[WARN] careful",
        "[ERROR] bad",
    ]


class ListHandler(logging.Handler):
    def __init__(self):
        super().__init__()
        self.messages = []

    def emit(self, record):
        self.messages.append(record.getMessage())


def test_root_logger_info_and_debug_become_log_lines(runner):
    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.WARNING)  # Python's default, whatever the test run configured
    seen_by_process = ListHandler()
    root.addHandler(seen_by_process)
    try:
        outcome = runner.run("fns:rootLevels", {}, identity=ADMIN)
        assert outcome.log_line_strings == [
            "[DEBUG] root debug 1", "[INFO] root info", "[INFO] child info", "[WARN] root warning",
        ]
        # Outside the function nothing changed: the level, and what the process's handlers get.
        assert root.level == logging.WARNING and not root.isEnabledFor(logging.INFO)
        logging.info("outside info")
        assert seen_by_process.messages == ["root warning"]
    finally:
        root.removeHandler(seen_by_process)
        root.setLevel(level)


def test_print_outside_functions_is_untouched(runner, capsys):
    print("outside a function")
    assert "outside a function" in capsys.readouterr().out


def test_log_overflow(runner):
    outcome = runner.run("fns:chatty", {"tag": "x", "lines": 300.0}, identity=ADMIN)
    assert len(outcome.log_lines) == 256
    assert outcome.log_line_strings[-1] == "[ERROR] Log overflow (maximum 256). Remaining log lines omitted."


def test_log_capture_is_isolated_between_concurrent_runs(runner):
    outcomes = {}

    def call(tag):
        outcomes[tag] = runner.run("fns:chatty", {"tag": tag, "lines": 30.0}, identity=ADMIN)

    threads = [threading.Thread(target=call, args=(f"t{i}",)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for tag, outcome in outcomes.items():
        assert outcome.ok
        assert outcome.log_line_strings == [f"[LOG] {tag} {i}" for i in range(30)]


async def test_run_async(runner):
    results = await asyncio.gather(*[
        runner.run_async("fns:chatty", {"tag": f"a{i}", "lines": 3.0}, identity=ADMIN) for i in range(4)
    ])
    assert [r.value for r in results] == ["a0", "a1", "a2", "a3"]
    assert all(len(r.log_lines) == 3 for r in results)


async def test_run_async_keeps_queries_moving_behind_a_slow_action(runner):
    item = add_item(runner)
    slow = asyncio.ensure_future(runner.run_async("fns:slowAction", {"seconds": 1.0}, identity=ADMIN))
    started = time.perf_counter()
    results = await asyncio.gather(*[runner.run_async("fns:get", {"id": item}, identity=ADMIN) for _ in range(50)])
    assert all(r.ok and r.value["_id"] == item for r in results)
    assert not slow.done() and time.perf_counter() - started < 1.0
    assert (await slow).value == "slept"
    with pytest.raises(ApiError):  # a malformed path raises through the worker thread
        await runner.run_async("bad path:x", {}, identity=ADMIN)


async def test_run_async_runs_slow_functions_side_by_side(runner):
    started = time.perf_counter()
    outcomes = await asyncio.gather(*[
        runner.run_async("fns:slowAction", {"seconds": 0.4}, identity=ADMIN) for _ in range(5)
    ])
    assert [o.value for o in outcomes] == ["slept"] * 5
    assert time.perf_counter() - started < 1.6  # not 5 x 0.4 s one after the other


# ---------------------------------------------------------------------------
# Actions and the execution log


def test_action_calls_queries_and_mutations(runner):
    outcome = runner.run("fns:work", {"n": 5.0}, identity=ANON, expected_type="action")
    assert outcome.ok, outcome.error_message
    assert outcome.value["doc"]["n"] == 5.0
    assert outcome.value["secret"] == "internal"  # functions may call internal functions
    assert outcome.value["caught"] == {"code": "NOPE", "count": 3}
    assert outcome.log_line_strings[0] == "[LOG] action starts"

    entries = runner.executions.by_request(outcome.request_id)
    completions = [e for e in entries if e.kind == "Completion"]
    parent = next(e for e in completions if e.identifier == "fns:work")
    children = [e for e in completions if e.parent_execution_id == parent.execution_id]
    assert sorted(e.identifier for e in children) == ["fns:add", "fns:failWithData", "fns:get", "fns:secret"]
    assert all(e.caller == "Action" for e in children) and parent.caller == "HttpApi"
    assert parent.identity_type == "unknown"
    progress = [e for e in entries if e.kind == "Progress"]
    assert progress and progress[0].log_lines[0].messages == ["action starts"]
    streamed = parent.to_json(structured=True, strip_action_lines=True)
    assert streamed["logLines"] == [] and streamed["udfType"] == "Action"


def test_execution_log_entries(runner):
    runner.run("fns:levels", {}, identity=ADMIN)
    runner.run("fns:lisst", {}, identity=ANON)
    entries, cursor = runner.executions.since(0)
    assert cursor == entries[-1].cursor
    ok, missing = entries[-2], entries[-1]
    as_json = ok.to_json(structured=True)
    assert as_json["kind"] == "Completion" and as_json["identifier"] == "fns:levels"
    assert as_json["udfType"] == "Query" and as_json["identityType"] == "instance_admin"
    assert as_json["logLines"][0]["messages"] == ["plain print"] and as_json["logLines"][0]["level"] == "LOG"
    assert isinstance(as_json["logLines"][0]["timestamp"], int)
    assert ok.to_json(structured=False)["logLines"][0] == "[LOG] plain print"
    assert missing.success is False and "Could not find public function" in missing.error
    assert runner.executions.since(cursor) == ([], cursor)


def test_execution_log_is_bounded():
    log = ExecutionLog(capacity=5)
    for i in range(12):
        log.append(ExecutionEntry(kind="Completion", udf_type="query", identifier=f"m:f{i}", timestamp=0.0,
                                  request_id="r", execution_id=str(i)))
    entries, cursor = log.since(0)
    assert [e.identifier for e in entries] == [f"m:f{i}" for i in range(7, 12)] and cursor == 12
    assert [e.identifier for e in log.since(11)[0]] == ["m:f11"]


async def test_wait_since_wakes_on_new_entry(runner):
    _, cursor = runner.executions.since(0)
    waiter = asyncio.create_task(runner.executions.wait_since(cursor, timeout=10))
    await asyncio.sleep(0)
    await runner.run_async("fns:listAll", {}, identity=ADMIN)
    entries, new_cursor = await asyncio.wait_for(waiter, 5)
    assert [e.identifier for e in entries] == ["fns:listAll"] and new_cursor > cursor
    empty, same = await runner.executions.wait_since(new_cursor, timeout=0.05)
    assert empty == [] and same == new_cursor


def test_http_action_runs_with_an_action_ctx(runner):
    def handler(ctx, request):
        print("got", request["path"])
        new_id = ctx.run_mutation("fns:add", {"n": 3.0})
        return {"status": 201, "id": new_id}

    outcome = runner.run_http_action(handler, {"path": "/hook"}, identity=ANON, route="POST /hook")
    assert outcome.ok and outcome.value["status"] == 201
    assert outcome.log_line_strings[0] == "[LOG] got /hook"
    completion = [e for e in runner.executions.by_request(outcome.request_id) if e.kind == "Completion"]
    assert {e.identifier for e in completion} == {"POST /hook", "fns:add"}
    route_entry = next(e for e in completion if e.identifier == "POST /hook")
    assert route_entry.to_json(structured=False)["udfType"] == "HttpAction"

    failing = runner.run_http_action(lambda ctx, req: 1 / 0, {}, identity=ANON, route="GET /x")
    assert failing.status == "error" and "Uncaught ZeroDivisionError: division by zero" in failing.error_message


def test_stream_response_shapes(runner):
    from console.emulator.executions import stream_response

    outcome = runner.run("fns:work", {"n": 1.0}, identity=ADMIN)
    entries, cursor = runner.executions.since(0)
    body = stream_response(entries, cursor, structured=False)
    assert body["newCursor"] == cursor
    kinds = {(e["kind"], e["identifier"]) for e in body["entries"]}
    assert ("Progress", "fns:work") in kinds and ("Completion", "fns:work") in kinds
    action_completion = next(e for e in body["entries"] if e["kind"] == "Completion" and e["identifier"] == "fns:work")
    assert action_completion["logLines"] == [] and action_completion["requestId"] == outcome.request_id
    progress = next(e for e in body["entries"] if e["kind"] == "Progress")
    assert progress["logLines"] == ["[LOG] action starts"]
    assert set(progress) == {"kind", "udfType", "componentPath", "identifier", "timestamp", "logLines", "requestId", "executionId"}


def test_user_identity_needs_token_identifier_or_issuer_and_subject():
    with pytest.raises(ValueError, match="tokenIdentifier"):
        Identity.user({"subject": "only-subject"})
    assert Identity.user({"tokenIdentifier": "t"}).user_attributes == {"tokenIdentifier": "t"}
    assert Identity.admin().user_attributes is None and Identity.admin().can_call_internal
    assert not Identity.user({"tokenIdentifier": "t"}).can_call_internal


# ---------------------------------------------------------------------------
# The fast path of the return value check agrees with values.check_value

from hypothesis import given, settings, strategies as st  # noqa: E402

from console import values  # noqa: E402
from console.emulator.runtime import _surely_valid  # noqa: E402

_leaves = st.one_of(
    st.none(), st.booleans(), st.floats(allow_nan=True), st.binary(max_size=4),
    st.integers(min_value=-(2**64), max_value=2**64), st.text(max_size=6), st.just(values.UNDEFINED),
)
_names = st.one_of(st.text(max_size=5), st.sampled_from(["$x", "_id", "a b", "\x00", "ok"]), st.integers())
_values = st.recursive(
    _leaves, lambda inner: st.one_of(st.lists(inner, max_size=3), st.dictionaries(_names, inner, max_size=3)),
    max_leaves=20,
)


@settings(max_examples=300, deadline=None)
@given(_values)
def test_fast_result_check_never_accepts_an_invalid_value(value):
    try:
        values.check_value(value)
        valid = True
    except ValueError:
        valid = False
    assert not _surely_valid(value, 0) or valid


def test_invalid_return_value_still_gets_the_full_message(runner, app):
    @query(args={})
    def badName(ctx, args):
        return {"$bad": 1.0}

    app.register("fns", "badName", badName)
    outcome = runner.run("fns:badName", {}, identity=ADMIN)
    assert outcome.status == "error"
    assert "return value invalid: Field name $bad starts with '$', which is reserved." in outcome.error_message


@pytest.mark.parametrize(
    "spoil, message",
    [
        (lambda doc: doc.update(extra=[{"ok": 1.0}, 2**63]),
         "Integer 9223372036854775808 does not fit in an int64 (range -2^63 .. 2^63-1)"),
        (lambda doc: doc.update(extra={"ok": "\ud800"}), "String '\\ud800' is not valid Unicode (lone surrogate)"),
        (lambda doc: doc.update({"é": 1.0}),
         "Field name 'é' has invalid character 'é': Field names can only contain non-control ASCII characters"),
        (lambda doc: doc.update(extra=(1.0,)), "tuple (1.0,) is not a supported Convex value"),
    ],
)
def test_engine_documents_changed_by_the_function_are_still_checked(runner, app, spoil, message):
    for n in range(5):
        add_item(runner, float(n))

    @query(args={})
    def spoiled(ctx, args):
        docs = ctx.db.query("items").collect()
        spoil(docs[3])
        return {"page": docs, "isDone": True}

    app.register("fns", "spoiled", spoiled)
    outcome = runner.run("fns:spoiled", {}, identity=ADMIN)
    assert outcome.status == "error"
    assert outcome.error_message.split("\n")[1] == f"Function fns.js:spoiled return value invalid: {message}"


async def test_fast_queries_run_on_the_loop_and_a_slow_run_sends_them_back(tmp_path):
    """After a few fast runs a query skips the worker threads; one slow run returns it to them."""
    import threading

    from console.emulator import runtime as runtime_module
    from console.emulator.app import load_app
    from console.emulator.engine import Database
    from console.emulator.identity import Identity

    db = Database.open(None)
    app = load_app("console.emulator.demo")
    db.set_schema(app.schema)
    runner = runtime_module.FunctionRunner(db, app)
    threads = []
    original = runner.run

    def recording_run(*args, **kwargs):
        threads.append(threading.current_thread())
        return original(*args, **kwargs)

    runner.run = recording_run
    try:
        for _ in range(runtime_module.INLINE_AFTER_FAST_RUNS + 2):
            outcome = await runner.run_async("counters:get", {"name": "hits"}, identity=Identity.admin())
            assert outcome.ok, outcome.error_message
        loop_thread = threading.current_thread()
        assert threads[0] is not loop_thread and threads[-1] is loop_thread
        runner._note_duration("counters:get", runtime_module.Outcome(
            status="success", udf_type="query", path="counters.js:get", duration=1.0))
        await runner.run_async("counters:get", {"name": "hits"}, identity=Identity.admin())
        assert threads[-1] is not loop_thread
        mutation = await runner.run_async("counters:increment", {"name": "hits"}, identity=Identity.admin())
        assert mutation.ok and threads[-1] is not loop_thread  # mutations never run on the loop
    finally:
        runner.close()
        db.close()
