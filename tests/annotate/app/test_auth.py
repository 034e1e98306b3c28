"""Sessions against the real server: sign-out, revoking an annotator (the real `prefpipe label
annotators revoke`) and expiry end a session at once; the cookie is random and the store keeps
only its hash. A page asked for without a live session answers 303 to /login (the API: 401)."""
from __future__ import annotations

import hashlib
import os
import subprocess
import sys

import httpx
import yaml

from prefpipe.annotate.annotation import add_annotator
from tests.annotate.app.conftest import ROOT
from tests.annotate.app.test_http import api, client, form_fields, sign_in, tasks_of


def signed_out(server, session: str) -> bool:
    """True when the cookie opens nothing: pages and posts send it to /login."""
    with client(server, session) as c:
        page = c.get("/label")
        post = c.post("/label/submit", data={"choice": "tie"}, headers={"Origin": server.url})
    return all((r.status_code, r.headers.get("location")) == (303, "/login") for r in (page, post))


def test_sign_out_ends_the_session_at_once(world):
    store, tokens, server = world
    session, other = sign_in(server, tokens["u1"]), sign_in(server, tokens["u1"])  # two browsers
    assert not signed_out(server, session) and store.sessions.count("u1") == 2
    with client(server, session) as c:
        fields = form_fields(c.get("/label").text)
        response = c.post("/logout", data={"csrf": fields["csrf"]}, headers={"Origin": server.url})
        assert (response.status_code, response.headers["location"]) == (303, "/login")
        assert 'prefpipe_session=""' in response.headers["set-cookie"]
        # the same cookie, replayed (as a copy of it would be): refused, and posts write nothing
        response = c.post("/label/submit", data=fields | {"choice": "first"}, headers={"Origin": server.url})
        assert (response.status_code, response.headers["location"]) == (303, "/login")
    assert signed_out(server, session) and not signed_out(server, other)  # the other browser stays in
    assert store.sessions.count("u1") == 1 and store.count("labels") == 0


def revoke(store_path, annotator: str, tmp_path) -> subprocess.CompletedProcess:
    """`prefpipe label annotators revoke ANNOTATOR` on the test's store (a project of its own)."""
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    params["store"]["path"] = str(store_path)
    project = tmp_path / "project"
    project.mkdir(exist_ok=True)
    (project / "params.yaml").write_text(yaml.safe_dump(params))
    env = {**os.environ, "PREFPIPE_ROOT": str(project), "OMP_NUM_THREADS": "1"}
    return subprocess.run([sys.executable, "-m", "flows.cli", "label", "annotators", "revoke", annotator],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)


def test_revoking_an_annotator_ends_their_sessions_and_token_at_once(world, tmp_path):
    store, tokens, server = world
    sessions = [sign_in(server, tokens["u1"]) for _ in range(2)]
    theirs = sign_in(server, tokens["u2"])
    with api(server, tokens["u1"]) as c:
        assert c.get("/api/next").status_code == 200
    result = revoke(store.path, "u1", tmp_path)
    assert result.returncode == 0, result.stderr
    assert "u1: revoked" in result.stdout and "2 signed-in session(s) ended" in result.stdout
    assert all(signed_out(server, s) for s in sessions) and not signed_out(server, theirs)
    with api(server, tokens["u1"]) as c:
        assert c.get("/api/next").status_code == 401
    refused = httpx.post(f"{server.url}/login", data={"token": tokens["u1"]}, headers={"Origin": server.url})
    assert refused.status_code == 401 and "set-cookie" not in refused.headers
    unknown = revoke(store.path, "nobody", tmp_path)
    assert unknown.returncode == 2 and unknown.stderr.strip() == (
        "error: annotator id 'nobody': no such annotator (`prefpipe label annotators list` shows them)")
    # adding them again issues a new token that works; their queue is still theirs
    fresh = add_annotator(store, "u1")
    with api(server, fresh) as c:
        assert c.get("/api/next").json()["task"]["task_id"] == tasks_of(store, "u1")[0]["task_id"]
    assert not signed_out(server, sign_in(server, fresh))


def test_the_cookie_is_random_and_the_store_keeps_only_its_hash(world):
    store, tokens, server = world
    first, second = sign_in(server, tokens["u1"]), sign_in(server, tokens["u1"])
    assert first != second and len(first) == 43
    token_hash = hashlib.sha256(tokens["u1"].encode()).hexdigest()
    assert not any(part in first for part in ("u1", tokens["u1"], token_hash[:8]))
    stored = {r["session_sha256"] for r in store.query("SELECT session_sha256 FROM sessions").to_pylist()}
    assert stored == {hashlib.sha256(v.encode()).hexdigest() for v in (first, second)}
    raw = b"".join(p.read_bytes() for p in store.path.parent.glob(store.path.name + "*"))  # + WAL
    assert first.encode() not in raw and second.encode() not in raw
    assert signed_out(server, stored.pop())  # what the store holds signs no one in


def test_an_expired_session_is_refused(world):
    store, tokens, server = world
    session = sign_in(server, tokens["u1"])
    assert not signed_out(server, session)
    with store.transaction() as con:  # twelve hours pass
        con.execute("UPDATE sessions SET expires_at = expires_at - INTERVAL 12 HOUR")
    assert signed_out(server, session)
