"""Serializable transactions: OCC conflicts, retries, concurrent increments, durability, timestamps."""

import os
import signal
import subprocess
import sys
import textwrap
import threading

import pytest

from console.emulator.clock import ManualClock
from console.emulator.engine import Commit, ConflictError, Database


@pytest.fixture
def db():
    database = Database.open(None)
    yield database
    database.close()


def scan(table):
    return {"source": {"type": "FullTableScan", "tableName": table, "order": None}, "operators": []}


def test_second_commit_of_two_concurrent_read_modify_writes_conflicts(db):
    counter = db.write(lambda tx: tx.insert("c", {"n": 0}))[0]
    first, second = db.begin(write=True), db.begin(write=True)
    assert first.snapshot_ts == second.snapshot_ts
    for tx in (first, second):
        n = tx.get(counter)["n"]
        tx.shallow_merge(counter, {"n": n + 1})
    first.commit()
    with pytest.raises(ConflictError):
        second.commit()
    assert db.read(lambda tx: tx.get(counter))["n"] == 1


def test_disjoint_transactions_do_not_conflict(db):
    a = db.write(lambda tx: tx.insert("c", {"n": 0}))[0]
    b = db.write(lambda tx: tx.insert("c", {"n": 0}))[0]
    first, second = db.begin(write=True), db.begin(write=True)
    first.shallow_merge(a, {"n": first.get(a)["n"] + 1})
    second.shallow_merge(b, {"n": second.get(b)["n"] + 1})
    first.commit()
    second.commit()
    assert [d["n"] for d in db.read(lambda tx: tx.collect(scan("c")))] == [1, 1]


def test_a_scan_conflicts_with_an_insert_into_its_range(db):
    db.write(lambda tx: tx.insert("c", {"n": 0}))
    reader = db.begin(write=True)
    total = sum(d["n"] for d in reader.collect(scan("c")))
    reader.insert("totals", {"total": total})
    db.write(lambda tx: tx.insert("c", {"n": 5}))
    with pytest.raises(ConflictError):
        reader.commit()


def test_write_retries_a_conflicting_function(db):
    counter = db.write(lambda tx: tx.insert("c", {"n": 0}))[0]
    calls = []

    def increment(tx):
        n = tx.get(counter)["n"]
        if not calls:  # a concurrent commit lands between this read and the commit
            calls.append("interfered")
            db.write(lambda other: other.shallow_merge(counter, {"n": 100}))
        calls.append(n)
        tx.shallow_merge(counter, {"n": n + 1})

    db.write(increment)
    assert calls == ["interfered", 0, 100]
    assert db.read(lambda tx: tx.get(counter))["n"] == 101


def test_eight_threads_increment_exactly_2000(db):
    counter = db.write(lambda tx: tx.insert("c", {"n": 0}))[0]
    errors = []

    def worker():
        try:
            for _ in range(250):
                db.write(lambda tx: tx.shallow_merge(counter, {"n": tx.get(counter)["n"] + 1}))
        except Exception as error:  # pragma: no cover - reported below
            errors.append(error)

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert db.read(lambda tx: tx.get(counter))["n"] == 2000


def test_commit_listener_and_read_set_intersection(db):
    commits: list[Commit] = []
    db.add_commit_listener(commits.append)
    a = db.write(lambda tx: tx.insert("c", {"n": 0}))[0]
    b = db.write(lambda tx: tx.insert("c", {"n": 1}))[0]
    tx = db.begin()
    tx.get(a)
    read_a = tx.read_set
    tx.abort()
    db.write(lambda t: t.shallow_merge(b, {"n": 2}))
    assert not read_a.intersects(commits[-1])
    db.write(lambda t: t.shallow_merge(a, {"n": 2}))
    assert read_a.intersects(commits[-1])
    assert commits[-1].tables == {"c"}
    assert [c.ts for c in commits] == sorted(c.ts for c in commits)


def test_commit_timestamps_are_monotonic_across_reopen(tmp_path):
    clock = ManualClock(start_ns=2_000_000_000_000_000_000)
    database = Database.open(str(tmp_path), clock=clock)
    ts = [database.write(lambda tx: tx.insert("t", {}))[1] for _ in range(3)]
    database.close()
    # The clock went backwards (e.g. a restart on another machine): timestamps still grow.
    database = Database.open(str(tmp_path), clock=ManualClock(start_ns=1_000))
    try:
        assert database.last_commit_ts == ts[-1]
        later = database.write(lambda tx: tx.insert("t", {}))[1]
        assert ts[0] < ts[1] < ts[2] < later
        times = [d["_creationTime"] for d in database.read(lambda tx: tx.collect(scan("t")))]
        assert len(times) == 4 and times == sorted(times) and len(set(times)) == 4
    finally:
        database.close()


CHILD = textwrap.dedent("""
    import sys, time
    from console.emulator.engine import Database
    db = Database.open(sys.argv[1])
    ids = [db.write(lambda tx: tx.insert("t", {"i": float(i)}))[0] for i in range(20)]
    print(",".join(ids), flush=True)
    time.sleep(60)
""")


def test_committed_writes_survive_kill_9(tmp_path):
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD, str(tmp_path)],
        stdout=subprocess.PIPE,
        cwd=os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
        text=True,
    )
    try:
        line = child.stdout.readline()
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait(timeout=10)
    ids = line.strip().split(",")
    assert len(ids) == 20
    database = Database.open(str(tmp_path))
    try:
        docs = database.read(lambda tx: tx.collect(scan("t")))
        assert [d["_id"] for d in docs] == ids
        assert database.read(lambda tx: tx.count("t")) == 20
    finally:
        database.close()


def test_reading_a_missing_table_is_invalidated_by_its_creation(db):
    commits = []
    db.add_commit_listener(commits.append)
    tx = db.begin()
    assert tx.collect(scan("later")) == [] and tx.count("later2") == 0
    read_set = tx.read_set
    tx.abort()
    db.write(lambda t: t.insert("other", {}))
    assert not read_set.intersects(commits[-1])
    db.write(lambda t: t.insert("later", {}))
    assert read_set.intersects(commits[-1])
    db.bulk_insert("later2", [{}])
    assert read_set.intersects(commits[-1])
