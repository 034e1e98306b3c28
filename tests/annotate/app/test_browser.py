"""The labeling page in a real headless Chromium (playwright driving Debian's chromium).

Sign in, label with the keyboard, watch the count move, type a rationale (shortcut keys are text
there), restart the server, sign in again: the labels are still there. Hostile HTML in a response
renders as inert text."""
from __future__ import annotations

import shutil

import pytest

from prefpipe.annotate.annotation import add_annotator, enqueue
from prefpipe.store import Store

XSS = '<script>window.__xss=1</script><img src=x onerror="window.__xss=2">'


def launch_chromium(playwright):
    executable = shutil.which("chromium")
    if executable is None:
        pytest.fail("chromium is not installed: the browser test needs it (apt-get install chromium)")
    return playwright.chromium.launch(
        executable_path=executable, args=["--no-sandbox", "--disable-gpu", "--disable-background-networking"])


def labels(store: Store) -> list[dict]:
    return store.query("SELECT l.pair_id, l.choice, l.rationale, l.shown_order FROM labels l "
                       "JOIN annotation_tasks t ON t.pair_id = l.pair_id AND t.annotator_id = l.annotator "
                       "ORDER BY t.position").to_pylist()


def expected(choice_shown: str, shown_order: str) -> str:
    return "a" if (choice_shown == "first") == (shown_order == "ab") else "b"


@pytest.mark.slow
def test_keyboard_labeling_survives_a_restart_and_responses_stay_inert(tmp_path, seed, app_server):
    from playwright.sync_api import expect, sync_playwright

    store = Store(tmp_path / "store.duckdb", lock_timeout_s=20)
    pairs = seed(store, [(XSS, "a plain answer"), ("first answer 1", "second answer 1"),
                         ("first answer 2", "second answer 2")])
    token = add_annotator(store, "ann")
    enqueue(store, pairs, ["ann"], overlap=1, gold={}, gold_every=0, seed=0)
    server = app_server(store.path)

    with sync_playwright() as playwright:
        browser = launch_chromium(playwright)
        try:
            page = browser.new_context().new_page()
            page.set_default_timeout(15_000)
            page.goto(f"{server.url}/login?token={token}")
            assert page.url == f"{server.url}/label"  # the token left the address bar
            progress = page.locator("#progress")
            expect(progress).to_have_text("Task 1 of 3 · 0 done")

            # the hostile response is shown as its literal text and never runs
            expect(page.locator(".response pre", has_text="window.__xss=1")).to_have_text(XSS)
            assert page.evaluate("typeof window.__xss") == "undefined"
            assert page.locator(".response img").count() == 0

            page.keyboard.press("1")  # A is better
            expect(progress).to_have_text("Task 2 of 3 · 1 done")
            first = labels(store)
            assert [r["choice"] for r in first] == [expected("first", first[0]["shown_order"])]

            rationale = page.locator("#rationale")
            rationale.click()
            page.keyboard.type("2 is text here, not a shortcut")  # '2' would mean "B is better"
            expect(rationale).to_have_value("2 is text here, not a shortcut")
            expect(progress).to_have_text("Task 2 of 3 · 1 done")
            assert len(labels(store)) == 1
            page.keyboard.press("Escape")  # leave the box; shortcuts work again
            page.keyboard.press("2")
            expect(progress).to_have_text("Task 3 of 3 · 2 done")
            second = labels(store)[1]
            assert second["choice"] == expected("second", second["shown_order"])
            assert second["rationale"] == "2 is text here, not a shortcut"

            server.restart()
            page = browser.new_context().new_page()  # a fresh browser profile: sign in again
            page.set_default_timeout(15_000)
            page.goto(f"{server.url}/label")
            assert page.url == f"{server.url}/login"
            page.fill("#token", token)
            page.click("button[type=submit]")
            expect(page.locator("#progress")).to_have_text("Task 3 of 3 · 2 done")
            assert [r["pair_id"] for r in labels(store)] == [first[0]["pair_id"], second["pair_id"]]
            page.keyboard.press("t")
            expect(page.locator("#progress")).to_have_text("All done: 3 of 3 labeled. Thank you.")
        finally:
            browser.close()
    assert [r["choice"] for r in labels(store)][2] == "tie"
