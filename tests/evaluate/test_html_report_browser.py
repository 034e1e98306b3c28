"""The HTML report in a real headless Chromium (playwright driving Debian's chromium), opened from
disk as a user would: no console error, no request beyond the file itself, hostile text inert, and
every figure rendered (its screenshot is not blank). A full-page screenshot is saved and printed
(copied to $PREFPIPE_SCREENSHOT_DIR/evaluation.png when that is set: pytest's tmp dirs rotate).

The checks are shown to fire: a blank element counts as blank, and an image from a CDN added to the
page is refused by its Content-Security-Policy, which the console reports."""
from __future__ import annotations

import math
import os
import shutil
import struct
import zlib
from pathlib import Path

import pytest

from prefpipe.evaluate.html_report import html_report, write_html_report
from tests.annotate.app.test_browser import XSS, launch_chromium


def png_pixels(data: bytes) -> tuple[int, int, int, bytes]:
    """(width, height, channels, raw pixel bytes) of an 8-bit non-interlaced RGB/RGBA PNG
    (what Chromium's screenshots are), its rows unfiltered per the PNG spec (filters 0-4)."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    pos, chunks = 8, {}
    while pos < len(data):
        (length,), kind = struct.unpack(">I", data[pos:pos + 4]), data[pos + 4:pos + 8]
        chunks.setdefault(kind, []).append(data[pos + 8:pos + 8 + length])
        pos += 12 + length
    width, height, depth, colour, _, _, interlace = struct.unpack(">IIBBBBB", chunks[b"IHDR"][0])
    assert depth == 8 and colour in (2, 6) and interlace == 0, (depth, colour, interlace)
    channels = 3 if colour == 2 else 4
    raw, stride = zlib.decompress(b"".join(chunks[b"IDAT"])), width * channels
    out, prev = bytearray(), bytearray(stride)
    for y in range(height):
        kind, row = raw[y * (stride + 1)], bytearray(raw[y * (stride + 1) + 1:(y + 1) * (stride + 1)])
        for i in range(stride):
            a = row[i - channels] if i >= channels else 0
            b, c = prev[i], prev[i - channels] if i >= channels else 0
            if kind == 1:
                row[i] = (row[i] + a) & 255
            elif kind == 2:
                row[i] = (row[i] + b) & 255
            elif kind == 3:
                row[i] = (row[i] + (a + b) // 2) & 255
            elif kind == 4:
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                row[i] = (row[i] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 255
        out += row
        prev = row
    return width, height, channels, bytes(out)


def inked_share(png: bytes) -> float:
    """The share of pixels that are not (near) white."""
    width, height, channels, pixels = png_pixels(png)
    inked = sum(1 for i in range(0, len(pixels), channels) if min(pixels[i:i + 3]) < 200)
    return inked / (width * height)


def report() -> str:
    steps = range(30)
    return html_report(
        {"prompts": 30, "win_rate": 0.7, "win_rate_low": 0.6, "win_rate_high": 0.8, "rm_win_rate": 0.8,
         "kl_nats": 1.7, "kl_nats_low": 1.5, "kl_nats_high": 1.9, "policy_rm_score": 2.0,
         "reference_rm_score": 0.5, "policy_mean_tokens": 12.0, "reference_mean_tokens": 18.0},
        [{"name": "kl_budget", "metric": "kl_nats", "value": 1.7, "min": None, "max": 10.0,
          "status": "passed", "reason": ""},
         {"name": "win_floor", "metric": "win_rate_low", "value": 0.45, "min": 0.5, "max": None,
          "status": "failed", "reason": XSS}],
        [{"family": f, "win": w, "policy_correct": w, "reference_correct": 0.5}
         for f, w in (("arithmetic", 0.6), ("code", 0.8), ("explain", 0.55))],
        [{"category": "code", "prompt": XSS, "policy_response": XSS, "reference_response": "plain",
          "policy_rm": 1.0, "reference_rm": 0.0, "log_ratio": 0.3, "judge_outcome": 1.0}],
        {"policy": [10 + i % 7 for i in range(60)], "reference": [8 + i % 15 for i in range(60)]},
        {"sft_loss": [{"step": s, "loss": 7 * math.exp(-s / 6)} for s in steps],
         "policy_train": [{"step": s, "reward": math.sqrt(s) / 6, "kl_nats": s / 10} for s in steps]})


@pytest.mark.slow
def test_the_report_opens_offline_renders_every_figure_and_runs_nothing(tmp_path):
    from playwright.sync_api import sync_playwright

    path = write_html_report(tmp_path / "reports" / "evaluation.html", report())
    url = path.resolve().as_uri()
    with sync_playwright() as playwright:
        browser = launch_chromium(playwright)
        try:
            page = browser.new_context(viewport={"width": 1280, "height": 900}).new_page()
            errors, failed, requested = watch(page)
            page.goto(url, wait_until="load")
            assert errors == [] and failed == [] and requested == [url]
            assert page.evaluate("typeof window.__xss") == "undefined"
            figures = page.locator("figure svg")
            assert figures.count() == 8  # 2 reward-vs-KL, lengths, 2 family, 3 curves
            for i in range(figures.count()):
                share = inked_share(figures.nth(i).screenshot())
                assert share > 0.02, f"figure {i} ({figures.nth(i).get_attribute('aria-label')}) is blank"
            shot = tmp_path / "evaluation.png"
            page.screenshot(path=str(shot), full_page=True)
            assert png_pixels(shot.read_bytes())[0] == 1280
            keep = os.environ.get("PREFPIPE_SCREENSHOT_DIR")  # pytest keeps only its last 3 tmp dirs
            if keep:
                shot = Path(shutil.copy(shot, Path(keep) / "evaluation.png"))
            print(f"full-page screenshot of the HTML report: {shot}")

            # the checks fire: an empty box is blank, and a CDN image is refused and reported
            page.set_content("<div id='box' style='width:200px;height:120px;background:#fff'></div>")
            assert inked_share(page.locator("#box").screenshot()) == 0
            cdn = tmp_path / "cdn.html"
            cdn.write_text(path.read_text().replace("</body>",
                                                    "<img src='https://cdn.example.org/vega.png'></body>"))
            page = browser.new_context().new_page()
            errors, failed, requested = watch(page)
            page.goto(cdn.resolve().as_uri(), wait_until="load")
            assert any("Content Security Policy" in e for e in errors), errors
            assert any("cdn.example.org" in f and "csp" in f.lower() for f in failed), failed  # refused
        finally:
            browser.close()


def watch(page) -> tuple[list[str], list[str], list[str]]:
    """Console errors and page errors, failed requests, and every URL requested, as they happen."""
    errors, failed, requested = [], [], []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.on("requestfailed", lambda r: failed.append(f"{r.url}: {r.failure}"))
    page.on("request", lambda r: requested.append(r.url))
    return errors, failed, requested
