"""The judge's answer cache: content-hash keys, and one file shared by several writing processes."""
from __future__ import annotations

import hashlib
import subprocess
import sys

from prefpipe.store.judge_cache import AnswerCache, cache_key

WRITER = """
import sys
from prefpipe.store.judge_cache import AnswerCache
cache = AnswerCache(sys.argv[1])
for i in range(int(sys.argv[3])):
    cache.put(f"{sys.argv[2]}-{i}", f"value {i}")
"""


def test_key_is_the_sha256_of_canonical_endpoint_and_content():
    messages = [{"role": "user", "content": "Which? é"}]
    url = "http://127.0.0.1:8000/v1/chat/completions"
    blob = ('{"endpoint":"http://127.0.0.1:8000/v1/chat/completions",'
            '"messages":[{"content":"Which? é","role":"user"}],"model":"m","params":{"a":1,"b":2}}')
    key = cache_key(url, "m", messages, {"b": 2, "a": 1})
    assert key == hashlib.sha256(blob.encode()).hexdigest()
    assert cache_key(url, "m2", messages, {"a": 1, "b": 2}) != key
    assert cache_key(url.replace("8000", "8001"), "m", messages, {"a": 1, "b": 2}) != key  # another server
    assert cache_key(url, "m", messages, {"a": 1, "b": 3}) != key  # another sampling knob


def test_processes_write_one_file_side_by_side(tmp_path):
    path = tmp_path / "deep" / "cache.sqlite"
    AnswerCache(path)
    writers = [subprocess.Popen([sys.executable, "-c", WRITER, str(path), name, "300"])
               for name in ("left", "right", "middle")]
    assert [w.wait(timeout=120) for w in writers] == [0, 0, 0]
    keys = [f"{name}-{i}" for name in ("left", "right", "middle") for i in range(300)]
    found = AnswerCache(path).get_many(keys + ["absent"])
    assert len(found) == 900 and found["right-299"] == "value 299"


def test_a_file_that_is_not_a_cache_says_what_to_do(tmp_path):
    path = tmp_path / "notes.sqlite"
    path.write_text("these are my notes, not a database " * 100)
    try:
        AnswerCache(path)
    except RuntimeError as err:
        assert str(path) in str(err) and "critic.http.cache_path" in str(err)
    else:
        raise AssertionError("a text file was accepted as a cache")
