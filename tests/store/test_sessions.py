"""`store.sessions` on a real DuckDB file: a session lives until it expires, is deleted, its token is
re-issued or its annotator revoked; expired and orphaned rows go at the next sign-in."""
from __future__ import annotations

from datetime import datetime, timedelta

import pytest

from prefpipe.store import Store
from prefpipe.store.sessions import REVOKED

T0 = datetime(2025, 1, 1, 9, 0)
HOUR = timedelta(hours=1)


@pytest.fixture
def store(tmp_path) -> Store:
    store = Store(tmp_path / "store.duckdb", lock_timeout_s=20)
    store.annotations.upsert_annotator("u1", "tok1", False)
    store.annotations.upsert_annotator("boss", "tok2", True)
    return store


def test_a_session_lives_until_it_expires(store):
    sessions = store.sessions
    assert sessions.create("s1", "tok1", T0, T0 + 12 * HOUR) == "u1"
    assert sessions.create("s2", "tok2", T0, T0 + 12 * HOUR) == "boss"
    assert sessions.lookup("s1", T0 + 11 * HOUR) == ("u1", False)
    assert sessions.lookup("s2", T0) == ("boss", True)
    assert sessions.lookup("s1", T0 + 12 * HOUR) is None  # expired
    assert sessions.lookup("nope", T0) is None
    # a token no one holds writes nothing
    assert sessions.create("s3", "unknown", T0, T0 + HOUR) is None and sessions.count() == 2
    # the next sign-in purges the expired rows
    assert sessions.create("s4", "tok1", T0 + 13 * HOUR, T0 + 25 * HOUR) == "u1"
    assert sessions.count() == 1 and sessions.lookup("s4", T0 + 14 * HOUR) == ("u1", False)


def test_sign_out_deletes_one_session(store):
    sessions = store.sessions
    sessions.create("s1", "tok1", T0, T0 + HOUR)
    sessions.create("s2", "tok1", T0, T0 + HOUR)
    assert sessions.delete("s1") is True and sessions.delete("s1") is False
    assert sessions.lookup("s1", T0) is None and sessions.lookup("s2", T0) == ("u1", False)


def test_re_issuing_a_token_ends_the_old_sessions(store):
    sessions = store.sessions
    sessions.create("s1", "tok1", T0, T0 + HOUR)
    store.annotations.upsert_annotator("u1", "tok1-new", False)
    assert sessions.lookup("s1", T0) is None
    assert sessions.create("s2", "tok1", T0, T0 + HOUR) is None  # the old token signs no one in
    assert sessions.create("s3", "tok1-new", T0, T0 + HOUR) == "u1"
    assert sessions.count("u1") == 1  # the orphaned row was purged by that sign-in


def test_revoking_ends_sessions_and_the_token(store):
    sessions = store.sessions
    for key in ("s1", "s2"):
        sessions.create(key, "tok1", T0, T0 + HOUR)
    sessions.create("s3", "tok2", T0, T0 + HOUR)
    assert sessions.revoke("u1") == 2
    assert sessions.lookup("s1", T0) is None and sessions.count("u1") == 0
    assert sessions.lookup("s3", T0) == ("boss", True)  # others keep theirs
    assert store.annotations.annotator_for_token_hash("tok1") is None
    assert store.annotations.annotator_token_hash("u1")[0].startswith(REVOKED)
    assert sessions.revoke("u1") == 0  # revoked twice: still there, nothing more to end
    assert sessions.revoke("nobody") is None
    store.annotations.upsert_annotator("u1", "tok1-again", False)  # re-adding restores access
    assert sessions.create("s4", "tok1-again", T0, T0 + HOUR) == "u1"


def test_revoked_hashes_stay_unique(store):
    store.annotations.upsert_annotator("u3", "tok3", False)
    assert store.sessions.revoke("u1") == 0 and store.sessions.revoke("u3") == 0  # no UNIQUE clash
    hashes = {store.annotations.annotator_token_hash(a)[0] for a in ("u1", "u3")}
    assert len(hashes) == 2
