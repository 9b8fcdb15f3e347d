"""Engine benchmark: bulk load N posts (3 user indexes) and page timings at the start/middle/end,
then the per-operation costs: a 10,000-row page read as `_system/cli/tableData` reads it (with
maximumBytesRead), `tx.get` by id, and a single-insert commit (durable, in a data directory).

    .venv/bin/python bench/bench_engine_paging.py [N]      # default 1,000,000

Pages of 100 through a full table scan and through an index; a middle/last page starts from a
cursor at that position (built from the index key, as a client holding that cursor would).
"""

import os
import random
import statistics
import sys
import tempfile
import time

from console.emulator.engine import Database, IndexDefinition, SchemaDefinition, TableDefinition
from console.emulator.engine.query import compile_query, encode_cursor

VALIDATE = os.environ.get("BENCH_VALIDATE", "0") == "1"


def load(db: Database, n: int) -> tuple[float, float]:
    db.set_schema(SchemaDefinition({
        "users": TableDefinition(None, [IndexDefinition("by_email", ["email"])]),
        "posts": TableDefinition(None, [
            IndexDefinition("by_author", ["authorId"]),
            IndexDefinition("by_published", ["published"]),
            IndexDefinition("by_author_and_published", ["authorId", "published"]),
        ]),
    }))
    rng = random.Random(1)
    start = time.perf_counter()
    cpu = time.process_time()
    users = db.bulk_insert("users", ({"email": f"u{i}@x.dev", "name": f"User {i}"} for i in range(max(1, n // 10))))
    posts = (
        {
            "title": f"Post {i}",
            "content": "lorem ipsum " * 8,
            "authorId": users[rng.randrange(len(users))],
            "published": i % 3 != 0,
            "createdAt": 1.7e12 + i,
            "updatedAt": 1.7e12 + i,
        }
        for i in range(n)
    )
    db.bulk_insert("posts", posts, return_ids=False, validate=VALIDATE)
    return time.perf_counter() - start, time.process_time() - cpu


def cursor_at(db: Database, query: dict, position: str) -> str | None:
    """A cursor after the first/middle/last-but-one-page rows of the query's scan order."""
    tx = db.begin()
    try:
        compiled = compile_query(tx, query)
        index_id = compiled.index.index_id
        total = db._writer.execute("SELECT COUNT(*) FROM index_entries WHERE index_id=?", (index_id,)).fetchone()[0]
        before = {"first": 0, "middle": total // 2, "last": total - 100}[position]
        if before == 0:
            return None
        order = "DESC" if compiled.desc else "ASC"
        row = db._writer.execute(
            f"SELECT key FROM index_entries WHERE index_id=? ORDER BY key {order} LIMIT 1 OFFSET ?",
            (index_id, before - 1),
        ).fetchone()
        return encode_cursor(compiled.fingerprint, row[0])
    finally:
        tx.abort()


def page_times(db: Database, query: dict, cursors: dict, repeat: int = 30) -> dict:
    """Median time of one 100-row page per position, measured round-robin so that load from
    other processes affects every position alike."""
    samples = {name: [] for name in cursors}
    for _ in range(repeat):
        for name, cursor in cursors.items():
            start = time.perf_counter()
            result = db.read(lambda tx: tx.query_page(query, cursor=cursor, page_size=100))
            samples[name].append(time.perf_counter() - start)
            assert len(result["page"]) == 100, (name, len(result["page"]))
    return {name: statistics.median(values) for name, values in samples.items()}


def median_cost(fn, repeat: int, rounds: int = 5) -> float:
    """Median over rounds of the mean wall time of `fn()` (seconds)."""
    samples = []
    for _ in range(rounds):
        start = time.perf_counter()
        for _ in range(repeat):
            fn()
        samples.append((time.perf_counter() - start) / repeat)
    return statistics.median(samples)


def operation_costs(db: Database, n: int) -> None:
    rows = min(n, 10_000)
    query = {"source": {"type": "FullTableScan", "tableName": "posts", "order": "desc"}, "operators": []}

    def big_page():
        page = db.read(lambda tx: tx.query_page(query, cursor=None, page_size=rows, maximum_rows_read=10_000,
                                                maximum_bytes_read=5_000_000))
        assert len(page["page"]) == rows

    seconds = median_cost(big_page, 1)
    print(f"page of {rows:,} rows (as tableData): {seconds * 1e3:.1f} ms, {seconds / rows * 1e6:.2f} us/document")
    some_id = db.read(lambda tx: tx.collect({**query, "operators": [{"limit": 1}]}))[0]["_id"]
    print(f"tx.get by id: {median_cost(lambda: db.read(lambda tx: tx.get(some_id)), 2000) * 1e6:.1f} us")
    directory = tempfile.mkdtemp(prefix="bench-engine-")
    durable = Database.open(directory)
    try:
        insert = lambda: durable.write(lambda tx: tx.insert("posts", {"title": "x", "published": True}))
        insert()
        print(f"single insert commit (durable, synchronous=FULL): {median_cost(insert, 100) * 1e6:.0f} us")
    finally:
        durable.close()


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 1_000_000
    db = Database.open(None)
    try:
        seconds, cpu = load(db, n)
        print(f"bulk load (validate={VALIDATE}): {n:,} posts + {max(1, n // 10):,} users in {seconds:.1f} s "
              f"({n / seconds:,.0f} posts/s), process CPU {cpu:.1f} s; load average {os.getloadavg()[0]:.1f}")
        queries = {
            "full table scan": {"source": {"type": "FullTableScan", "tableName": "posts", "order": None}, "operators": []},
            "index by_published": {"source": {"type": "IndexRange", "indexName": "posts.by_published",
                                              "range": [], "order": "desc"}, "operators": []},
        }
        for name, query in queries.items():
            times = page_times(db, query, {p: cursor_at(db, query, p) for p in ("first", "middle", "last")})
            first = times["first"]
            print(f"{name}: first {first * 1e3:.2f} ms, middle {times['middle'] * 1e3:.2f} ms "
                  f"(x{times['middle'] / first:.2f}), last {times['last'] * 1e3:.2f} ms (x{times['last'] / first:.2f})")
        operation_costs(db, n)
    finally:
        db.close()


if __name__ == "__main__":
    main()
