"""The annotation server for real: uvicorn in a subprocess on loopback, a DuckDB file, httpx (the
`world` fixture is in conftest.py; the helpers here serve test_auth and test_limits too)."""
from __future__ import annotations

import re
import subprocess
import sys
import textwrap

import httpx

from prefpipe.annotate.annotation import add_annotator
from prefpipe.store import Store

INJECTION = "x'); DROP TABLE labels; --"


def client(server, session: str | None = None) -> httpx.Client:
    headers = {"Cookie": f"prefpipe_session={session}"} if session else {}
    return httpx.Client(base_url=server.url, headers=headers, follow_redirects=False, timeout=30)


def sign_in(server, token: str) -> str:
    response = httpx.post(f"{server.url}/login", data={"token": token}, headers={"Origin": server.url})
    assert response.status_code == 303 and response.headers["location"] == "/label", response.text
    cookie = response.headers["set-cookie"]
    assert "HttpOnly" in cookie and "SameSite=strict" in cookie and token not in cookie
    return re.search(r"prefpipe_session=([^;]+)", cookie).group(1)


def form_fields(html: str) -> dict[str, str]:
    return dict(re.findall(r'<input type="hidden" name="(\w+)" value="([^"]*)">', html))


def api(server, token: str) -> httpx.Client:
    return httpx.Client(base_url=server.url, headers={"Authorization": f"Bearer {token}"}, timeout=30)


def tasks_of(store: Store, annotator: str) -> list[dict]:
    return store.query("SELECT * FROM annotation_tasks WHERE annotator_id = ? ORDER BY position",
                       [annotator]).to_pylist()


def test_every_route_needs_a_session_or_token(world):
    store, tokens, server = world
    task = tasks_of(store, "u1")[0]["task_id"]
    for session in (None, "u1.1.abc.forged", sign_in(server, tokens["u1"])[:-2] + "00"):
        with client(server, session) as c:
            for path in ("/label", "/admin"):
                response = c.get(path)
                assert (response.status_code, response.headers["location"]) == (303, "/login"), path
            for path in ("/label/submit", "/logout"):
                response = c.post(path, data={"task_id": task, "choice": "first"},
                                  headers={"Origin": server.url})
                assert (response.status_code, response.headers["location"]) == (303, "/login"), path
            assert c.get("/").headers["location"] == "/label"
    for bearer in ({}, {"Authorization": "Bearer nope"}, {"Authorization": f"Basic {tokens['u1']}"}):
        with httpx.Client(base_url=server.url, headers=bearer) as c:
            assert c.get("/api/next").status_code == 401
            assert c.get(f"/api/task/{task}").status_code == 401
            response = c.post("/api/submit", json={"task_id": task, "choice": "first"})
            assert response.status_code == 401 and response.headers["www-authenticate"] == "Bearer"
    with client(server) as c:
        for path in ("/docs", "/openapi.json", "/redoc"):
            assert c.get(path).status_code == 404
        login = c.get("/login")
        assert login.headers["x-frame-options"] == "DENY"
        assert login.headers["x-content-type-options"] == "nosniff"
        assert login.headers["content-security-policy"].startswith("default-src 'self'")
        assert c.get("/login", headers={"Host": "evil.example:80"}).status_code == 400  # DNS rebinding
    assert store.count("labels") == 0


def test_a_token_opens_only_its_own_queue(world):
    store, tokens, server = world
    theirs = tasks_of(store, "u2")[0]["task_id"]
    with api(server, tokens["u1"]) as c:
        assert c.get(f"/api/task/{theirs}").status_code == 404
        response = c.post("/api/submit", json={"task_id": theirs, "choice": "first"})
        assert response.status_code == 404
        own = c.get("/api/next").json()
        assert own["task"]["task_id"] == tasks_of(store, "u1")[0]["task_id"] and own["total"] == 4
        assert "pair_id" not in own["task"]
    session = sign_in(server, tokens["u1"])
    with client(server, session) as c:
        fields = form_fields(c.get("/label").text)
        response = c.post("/label/submit", data={**fields, "task_id": theirs, "choice": "first"},
                          headers={"Origin": server.url})
        assert response.status_code == 404
        assert c.get("/admin").status_code == 403  # not an admin
    assert store.count("labels") == 0


def test_cross_site_form_posts_are_refused_and_write_nothing(world):
    store, tokens, server = world
    session = sign_in(server, tokens["u1"])
    other_session = sign_in(server, tokens["u2"])
    with client(server, other_session) as c:
        other_csrf = form_fields(c.get("/label").text)["csrf"]
    with client(server, session) as c:
        fields = form_fields(c.get("/label").text)
        good = {**fields, "choice": "second"}
        own = {"Origin": server.url}
        attempts = [
            ({k: v for k, v in good.items() if k != "csrf"}, own),  # no token
            ({**good, "csrf": "0" * 64}, own),  # a wrong token
            ({**good, "csrf": other_csrf}, own),  # another session's token
            (good, {"Origin": "http://evil.example"}),  # a foreign origin, right token
            (good, {"Origin": "null"}),
            (good, {"Referer": "http://evil.example/page"}),  # no Origin, foreign Referer
            (good, {}),  # neither Origin nor Referer
        ]
        for data, headers in attempts:
            response = c.post("/label/submit", data=data, headers=headers)
            assert response.status_code == 403, (data, headers)
        assert store.count("labels") == 0
        response = c.post("/label/submit", data=good, headers={"Referer": f"{server.url}/label"})
        assert (response.status_code, response.headers["location"]) == (303, "/label")
    assert store.query("SELECT annotator FROM labels").to_pylist() == [{"annotator": "u1"}]
    refused = httpx.post(f"{server.url}/login", data={"token": tokens["u1"]},
                         headers={"Origin": "http://evil.example"})
    assert refused.status_code == 403 and "set-cookie" not in refused.headers


def test_injection_strings_are_data_and_responses_are_escaped(world):
    store, tokens, server = world
    for token in ("' OR '1'='1", "x' OR 1=1 --", INJECTION):
        with api(server, token) as c:
            assert c.get("/api/next").status_code == 401
        response = httpx.post(f"{server.url}/login", data={"token": token}, headers={"Origin": server.url})
        assert response.status_code == 401 and "set-cookie" not in response.headers
    with api(server, tokens["u1"]) as c:
        task = c.get("/api/next").json()["task"]
        response = c.post("/api/submit", json={"task_id": task["task_id"], "choice": "tie",
                                               "rationale": INJECTION})
        assert response.status_code == 200 and response.json()["choice"] == "tie"
        assert c.post("/api/submit", json={"task_id": "' OR 1=1 --", "choice": "first"}).status_code == 404
    assert store.query("SELECT rationale FROM labels").to_pylist() == [{"rationale": INJECTION}]
    assert store.count("annotators") == 3
    # p0's response is hostile HTML: the page shows it as text
    session = sign_in(server, tokens["u2"])
    with client(server, session) as c:
        page = c.get("/label").text
    assert set(form_fields(page)) == {"csrf", "task_id"} and "plain b0" in page  # no pair id, no gold flag
    assert "&lt;script&gt;window.__xss=1&lt;/script&gt;" in page and "<script>window" not in page
    assert "&lt;img src=x onerror=" in page and "<img" not in page


def test_submits_survive_kill_9_and_double_submit_is_one_row(world, app_server):
    store, tokens, server = world
    with api(server, tokens["u1"]) as c:
        task = c.get("/api/next").json()["task"]
        first = c.post("/api/submit", json={"task_id": task["task_id"], "choice": "first", "rationale": "r"})
        again = c.post("/api/submit", json={"task_id": task["task_id"], "choice": "second"})
        assert first.status_code == again.status_code == 200
        assert again.json()["choice"] == "first"  # the first answer is kept
    server.kill()  # SIGKILL right after the response: no shutdown code runs
    rows = store.query("SELECT annotator, rationale FROM labels").to_pylist()
    assert rows == [{"annotator": "u1", "rationale": "r"}]
    restarted = app_server(store.path)
    with api(restarted, tokens["u1"]) as c:
        state = c.get("/api/next").json()
        assert (state["done"], state["total"]) == (1, 4) and state["task"]["task_id"] != task["task_id"]
    session = sign_in(restarted, tokens["u1"])
    with client(restarted, session) as c:
        fields = form_fields(c.get("/label").text)
        for _ in range(2):  # the same form posted twice (a double click)
            response = c.post("/label/submit", data={**fields, "choice": "tie"},
                              headers={"Origin": restarted.url})
            assert response.status_code == 303
        assert "Task 3 of 4" in c.get("/label").text
    assert store.count("labels") == 2


def test_rotating_a_token_ends_its_sessions(world):
    store, tokens, server = world
    session = sign_in(server, tokens["u1"])
    with client(server, session) as c:
        assert c.get("/label").status_code == 200
        add_annotator(store, "u1")
        assert c.get("/label").headers["location"] == "/login"
    with api(server, tokens["u1"]) as c:
        assert c.get("/api/next").status_code == 401


def test_admin_page_shows_progress_gold_and_agreement(world):
    store, tokens, server = world
    # u1 says a, a, b, b and u2 says a, b, b, b on p0..p3: p_o = 3/4, p_e = 1/2 -> κ = 0.5;
    # α: coincidences aa 2, ab 2, bb 4 of n = 8 (n_a = 3, n_b = 5): 1 - (2/8) / (30/56) = 0.533
    answers = {"u1": "aabb", "u2": "abbb"}
    for annotator, choices in answers.items():
        with api(server, tokens[annotator]) as c:
            for task in tasks_of(store, annotator):
                want = choices[int(task["pair_id"][1:])]
                shown = "first" if (want == "a") == (task["shown_order"] == "ab") else "second"
                response = c.post("/api/submit", json={"task_id": task["task_id"], "choice": shown})
                assert response.status_code == 200
    labels = {(r["pair_id"], r["annotator"]): r["choice"]
              for r in store.query("SELECT * FROM labels").to_pylist()}
    assert "".join(labels[f"p{i}", "u2"] for i in range(4)) == "abbb"
    with client(server, sign_in(server, tokens["boss"])) as c:
        page = c.get("/admin").text
    assert re.search(r"<td>u1</td>\s*<td>4</td><td>4</td>", page)
    assert re.search(r"<td>u1\|u2</td>\s*<td>0.500</td>\s*<td>4</td>", page)
    assert "Krippendorff's α (nominal): 0.533" in page
    assert "4 pairs:" in page and "b 2" in page and "tie 1" in page  # majority: a, tie (a vs b), b, b


CONTENDER = textwrap.dedent("""
    import sys, pyarrow as pa
    from prefpipe.store import Store
    store = Store(sys.argv[1], lock_timeout_s=30)
    for i in range(int(sys.argv[2])):
        store.upsert("prompts", pa.Table.from_pylist([{"prompt_id": f"other{i}", "source": "stage",
            "category": "c", "prompt": "p", "meta": None, "split": "train"}]))
        n = store.query("SELECT count(*) AS n FROM prompts WHERE source = 'stage'")["n"][0].as_py()
        assert n == i + 1
    print("ok")
""")


def test_the_app_and_another_process_share_the_store(world):
    store, tokens, server = world
    other = subprocess.Popen([sys.executable, "-c", CONTENDER, str(store.path), "25"],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    answered = 0
    with api(server, tokens["u1"]) as c:
        for _ in range(6):  # reads and writes interleaved with the other process's transactions
            for _ in range(3):
                assert c.get("/api/next").status_code == 200
            task = c.get("/api/next").json()["task"]
            if task:
                response = c.post("/api/submit", json={"task_id": task["task_id"], "choice": "tie"})
                assert response.status_code == 200
                answered += 1
    out, err = other.communicate(timeout=120)
    assert other.returncode == 0 and out.strip() == "ok", err
    assert answered == 4 and store.count("labels") == 4
    assert store.query("SELECT count(*) AS n FROM prompts WHERE source = 'stage'")["n"][0].as_py() == 25


def test_a_cross_site_sign_in_link_asks_before_signing_in(world):
    store, tokens, server = world
    link = f"{server.url}/login?token={tokens['u1']}"
    response = httpx.get(link, headers={"Sec-Fetch-Site": "cross-site"})
    assert response.status_code == 200 and "set-cookie" not in response.headers
    assert "Sign in with the token from your link?" in response.text
    direct = httpx.get(link, headers={"Sec-Fetch-Site": "none"})  # typed or pasted: signs in
    assert direct.status_code == 303 and "prefpipe_session=" in direct.headers["set-cookie"]
    assert httpx.get(f"{server.url}/login?token=wrong").status_code == 401


def test_tokens_stay_out_of_the_access_log():
    import logging

    from prefpipe.annotate.app.server import redact_tokens

    record = logging.LogRecord("uvicorn.access", logging.INFO, "", 0, '%s - "%s %s" %d',
                               ("127.0.0.1", "GET", "/login?token=SECRET&x=1", 303), None)
    redact_tokens(record)
    assert "SECRET" not in record.getMessage() and "/login?token=<redacted>&x=1" in record.getMessage()
