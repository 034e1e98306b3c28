"""Group commit: concurrent writes share transactions, refusals stay private, failures are shared."""
from __future__ import annotations

import threading

import pytest

from prefpipe.store import Store
from prefpipe.store.group_commit import GroupCommit


@pytest.fixture
def store(tmp_path) -> Store:
    store = Store(tmp_path / "s.duckdb")
    with store.transaction() as con:
        con.execute("CREATE TABLE log (writer INTEGER PRIMARY KEY, txn BIGINT)")
    return store


def test_concurrent_writes_all_commit_in_fewer_transactions(store):
    commits, results, errors = GroupCommit(), {}, []
    start = threading.Barrier(24)

    def writer(n: int) -> None:
        def write(con):
            con.execute("INSERT INTO log VALUES (?, txid_current())", [n])
            return n * n
        start.wait()
        try:
            results[n] = commits.run(store, write)
        except Exception as err:  # pragma: no cover - reported below
            errors.append(err)

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(24)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors and results == {n: n * n for n in range(24)}
    rows = store.query("SELECT writer, txn FROM log").to_pylist()
    assert sorted(r["writer"] for r in rows) == list(range(24))
    assert len({r["txn"] for r in rows}) < 24  # some writes shared a transaction


def run_as_one_batch(commits: GroupCommit, store: Store, writes: dict) -> dict:
    """Start every write while the lock is held, so that they are all pending together and
    commit as one batch; returns each write's result or raised error."""
    outcome = {}
    with commits.lock:
        threads = [threading.Thread(target=lambda k=k, f=f: outcome.__setitem__(k, _call(commits, store, f)))
                   for k, f in writes.items()]
        for thread in threads:
            thread.start()
        while len(commits._pending) < len(writes):
            pass
    for thread in threads:
        thread.join()
    return outcome


def test_a_refusal_reaches_only_its_caller_and_the_batch_commits(store):
    def refuse(con):
        raise PermissionError("not yours")

    def insert(con):
        con.execute("INSERT INTO log VALUES (1, txid_current())")
        return "ok"

    outcome = run_as_one_batch(GroupCommit(), store, {"refused": refuse, "inserted": insert})
    assert isinstance(outcome["refused"], PermissionError) and outcome["inserted"] == "ok"
    assert store.count("log") == 1


def test_a_failure_rolls_back_the_whole_batch_and_reaches_every_caller(store):
    def insert(con):
        con.execute("INSERT INTO log VALUES (2, txid_current())")

    def crash(con):
        con.execute("INSERT INTO log VALUES (2, txid_current())")  # duplicate key: a real failure

    outcome = run_as_one_batch(GroupCommit(), store, {"first": insert, "second": crash})
    assert all(isinstance(result, Exception) for result in outcome.values())
    assert store.count("log") == 0


def _call(commits: GroupCommit, store: Store, write):
    try:
        return commits.run(store, write)
    except Exception as err:
        return err
