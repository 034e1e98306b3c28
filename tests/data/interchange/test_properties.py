"""Property tests (hypothesis) of the interchange readers and parsers: any bytes, any JSON-shaped
record gives records (or a preference) or a clear DataError, never another exception, and fast.

Each call runs under a wall-clock alarm (`_within`), so a hang fails the example that caused it
instead of stalling the suite; hypothesis then shrinks it to a minimal input. Run alone with
``pytest -q tests/data/interchange/test_properties.py`` (about 30 s on one core)."""
from __future__ import annotations

import contextlib
import json
import math
import signal
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from prefpipe.data.interchange import import_preferences
from prefpipe.data.interchange.formats import PARSERS, BadRow, Preference
from prefpipe.data.interchange.importer import parse_file
from prefpipe.data.readers import Unreadable, read_records, scan_records
from prefpipe.errors import DataError
from prefpipe.store import Store

# Defined here, not in conftest: no example database in the repo, no per-example deadline (the
# alarm below is the real bound), a fixed example budget that keeps the file near 30 s.
settings.register_profile("interchange", database=None, deadline=None, max_examples=150,
                          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                                 HealthCheck.function_scoped_fixture])
PROFILE = settings.get_profile("interchange")
LIMIT_S = 3.0  # one read or parse of any input here


class Hung(AssertionError):
    pass


@contextlib.contextmanager
def _within(seconds: float, what: object):
    def _alarm(signum, frame):
        raise Hung(f"took over {seconds}s: {str(what)[:120]!r}")
    previous = signal.signal(signal.SIGALRM, _alarm)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


# Keys every format reads, so generated records reach deep into the parsers; texts that have broken
# readers: lone surrogates, transcript markers, NUL, U+2028, CR, a BOM.
KEYS = ["prompt", "chosen", "rejected", "instruction", "completions", "response", "text", "overall_score",
        "fine-grained_score", "fine_grained_score", "ratings", "annotations", "Rating", "role", "content",
        "score_chosen", "score_rejected", "topic"]
ROLES = ["user", "assistant", "system", "tool", ""]
TEXTS = ["\ud800", "a\udfffb", "\n\nHuman:", "\n\nAssistant:", "\n\nHuman: hi\n\nAssistant: yo", " ", "\x00",
         "\u2028", "\r", "\ufeff", "N/A", "nan", "1e999", "-inf", "9" * 400]
NUMBERS = [10**400, -10**400, math.inf, -math.inf, math.nan, 0, 2.5, True, None]  # scores that broke _number
texts = st.one_of(st.sampled_from(TEXTS), st.text(max_size=12), st.sampled_from(ROLES),
                  st.lists(st.sampled_from(TEXTS + ["x", "y"]), max_size=4).map("".join))
scalars = st.one_of(st.sampled_from(NUMBERS), st.integers(), st.floats(), texts)
values = st.recursive(scalars, lambda inner: st.one_of(
    st.lists(inner, max_size=4), st.dictionaries(st.one_of(st.sampled_from(KEYS), st.text(max_size=4)),
                                                 inner, max_size=5)), max_leaves=24)
messages = st.lists(st.fixed_dictionaries({"role": st.sampled_from(ROLES), "content": texts}), max_size=3)
completions = st.lists(st.fixed_dictionaries({"response": texts}, optional={
    "overall_score": scalars, "ratings": values, "annotations": values}), max_size=4)
records = st.one_of(
    st.dictionaries(st.sampled_from(KEYS), values, max_size=6),
    st.fixed_dictionaries({"chosen": st.one_of(texts, messages), "rejected": st.one_of(texts, messages)},
                          optional={"prompt": st.one_of(texts, messages)}),
    st.fixed_dictionaries({"instruction": texts, "completions": completions}),
)


def _good_preference(pref: Preference) -> None:
    for text in (pref.prompt, pref.chosen, pref.rejected):
        assert isinstance(text, str) and text.strip()
        text.encode("utf-8")  # no lone surrogate reaches the store
    assert pref.chosen != pref.rejected


@settings(PROFILE)
@given(fmt=st.sampled_from(sorted(PARSERS)), record=records, seed=st.integers(0, 2**32))
def test_a_parser_gives_a_preference_none_or_a_bad_row(fmt, record, seed):
    with _within(LIMIT_S, record):
        try:
            pref = PARSERS[fmt](record, seed)
        except BadRow as err:
            assert str(err) and "\n" not in str(err)  # one line: the importer adds file and row
            return
    if pref is not None:
        _good_preference(pref)


def _read(path: Path, data: bytes) -> list:
    """read_records's contract: records, or a DataError; and scan_records agrees with it."""
    path.write_bytes(data)
    with _within(LIMIT_S, data):
        scanned = scan_records(path)
        try:
            read = read_records(path)
        except DataError as err:
            assert any(isinstance(row, Unreadable) for row in scanned) and str(path) in str(err)
            return scanned
    assert read == scanned
    assert all(isinstance(where, str) and isinstance(record, dict) for where, record in read)
    return scanned


json_texts = st.lists(values, max_size=5).map(lambda items: "\n".join(json.dumps(v) for v in items))
raw = st.one_of(st.binary(max_size=300), json_texts.map(str.encode),
                st.tuples(json_texts, st.integers(0, 400)).map(lambda t: t[0][:t[1]].encode()),
                st.lists(values, max_size=5).map(lambda v: json.dumps(v, indent=1).encode()),
                st.sampled_from([b"[" * 5000, b"{" * 5000, b'[{"a": ' + b"1" * 5000 + b"}]",
                                 b"\xef\xbb\xbf[]", b'["\\ud800"]', b"[1,]", b"]"]))


@pytest.mark.parametrize("suffix", [".jsonl", ".json"])
@settings(PROFILE)
@given(data=raw)
def test_any_bytes_give_records_or_a_data_error(tmp_path, suffix, data):
    _read(tmp_path / f"any{suffix}", data)


finite = st.recursive(st.one_of(st.none(), st.booleans(), st.integers(-10**30, 10**30),
                                st.floats(allow_nan=False), st.text(max_size=8)),
                      lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=4), inner,
                                                                                   max_size=3), max_leaves=12)
objects = st.lists(st.dictionaries(st.text(max_size=6), finite, max_size=4), min_size=1, max_size=6)


@settings(PROFILE)
@given(rows=objects, indent=st.sampled_from([None, 0, 2]), ascii_only=st.booleans(),
       cut=st.integers(0, 10**4))
def test_objects_round_trip_and_a_cut_file_keeps_what_came_before(tmp_path, rows, indent, ascii_only, cut):
    lines = [json.dumps(row, ensure_ascii=ascii_only) for row in rows]
    read = _read(tmp_path / "rows.jsonl", "\n".join(lines).encode())
    assert [record for _, record in read] == rows
    array = _read(tmp_path / "rows.json", json.dumps(rows, indent=indent, ensure_ascii=ascii_only).encode())
    assert [record for _, record in array] == rows
    text = "\n".join(lines)[:cut]
    kept = [row for row in _read(tmp_path / "cut.jsonl", text.encode()) if not isinstance(row, Unreadable)]
    whole = text.count("\n")  # lines before the cut are whole and read as they were
    assert [record for _, record in kept][:whole] == rows[:whole]


@settings(PROFILE)
@given(fmt=st.sampled_from(sorted(PARSERS)), rows=st.lists(records, min_size=1, max_size=4),
       max_chars=st.integers(1, 30), truncate=st.booleans())
def test_a_whole_file_parses_or_lists_its_bad_rows(tmp_path, fmt, rows, max_chars, truncate):
    path = tmp_path / "prefs.jsonl"
    path.write_text("\n".join(json.dumps(row) for row in rows) + "\n")
    with _within(LIMIT_S, rows):
        try:
            parsed = parse_file(path, fmt, max_chars=max_chars, truncate=truncate)
        except DataError as err:
            assert str(err).startswith(f"{path}: ")
            return
    for row in parsed.rows:
        _good_preference(row.pref)
        assert max(len(row.pref.prompt), len(row.pref.chosen), len(row.pref.rejected)) <= max_chars


@settings(PROFILE, max_examples=25)
@given(fmt=st.sampled_from(sorted(PARSERS)), rows=st.lists(records, min_size=1, max_size=4))
def test_what_parses_is_stored(fmt, rows):
    """Whatever a parser accepts, a real DuckDB store takes (text it can hold, ids it accepts)."""
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "prefs.jsonl"
        path.write_text("\n".join(json.dumps(row) for row in rows) + "\n")
        store = Store(Path(folder) / "s.duckdb", lock_timeout_s=10)
        try:
            report = import_preferences(store, path, fmt, truncate=True)
        except DataError:
            assert store.count("labels") == 0
            return
        assert store.count("labels") == report.new_labels == report.preferences
        confidences = store.query("SELECT confidence FROM labels")["confidence"].to_pylist()
        assert not any(math.isnan(c) for c in confidences)
