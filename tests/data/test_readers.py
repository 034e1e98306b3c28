"""The one reader of users' data files: JSONL, Parquet and datasets folders, each record with its
place ('line N' in JSONL, 'row index N' otherwise), and a DataError naming the file on bad input."""
from __future__ import annotations

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from prefpipe.data.readers import (
    MAX_LISTED,
    Unreadable,
    bad_rows_error,
    iter_record_batches,
    read_records,
    scan_records,
)
from prefpipe.errors import DataError, PrefpipeError


def test_jsonl_records_carry_their_line_counting_blank_lines(tmp_path):
    path = tmp_path / "p.jsonl"
    # U+2028 inside a string does not end a line; CRLF does
    path.write_bytes('{"a": 1}\n\n  \n{"a": "x\u2028y"}\r\n'.encode())
    assert read_records(path) == [("line 1", {"a": 1}), ("line 4", {"a": "x\u2028y"})]


def test_parquet_records_carry_their_row_index(tmp_path):
    path = tmp_path / "p.parquet"
    pq.write_table(pa.table({"a": [1, 2]}), path)
    assert read_records(path) == [("row index 0", {"a": 1}), ("row index 1", {"a": 2})]


@pytest.mark.parametrize("raw, problem", [
    (b'{"a": 1}\n{"a": \n', "line 2: not valid JSON: Expecting value at column 7 (the line ends there"),
    (b'{"a": 1}\r\n{"a": 1,\r\n', "line 2: not valid JSON: Expecting property name enclosed in double "
                                   "quotes at column 9 (the line ends there"),
    (b'{"a": "x}\n', "line 1: not valid JSON: Unterminated string starting at column 7"),
    (b'{"a": 1} {"b": 2}\n', "line 1: not valid JSON: Extra data at column 10"),
    (b"[" * 50_000 + b"\n", "line 1: not valid JSON: nested too deeply to read"),
    (b'{"a": ' + b"1" * 5000 + b"}\n", "line 1: not valid JSON: a number too long to read"),
    (b'{"a": 1}\n[1]\n', "line 2: expected a JSON object, got array"),
    (b'{"a": 1}\n\xff\n', "line 2: not UTF-8 text"),
])
def test_bad_jsonl_line_names_file_and_line(tmp_path, raw, problem):
    path = tmp_path / "bad.jsonl"
    path.write_bytes(raw)
    with pytest.raises(DataError) as err:
        read_records(path)
    assert str(err.value).startswith(f"{path}: {problem}")
    assert isinstance(err.value, PrefpipeError)  # one error family: the CLI prints one line


def test_missing_path(tmp_path):
    with pytest.raises(DataError, match="nope.jsonl: no such file or folder"):
        read_records(tmp_path / "nope.jsonl")


def test_plain_folder_is_a_data_error(tmp_path):
    folder = tmp_path / "not_a_dataset"
    folder.mkdir()
    (folder / "x.txt").write_text("hello")
    with pytest.raises(DataError, match="not a datasets folder"):
        read_records(folder)


@pytest.mark.parametrize("name", ["p.csv", "p.txt", "prompts"])
def test_unsupported_suffix(tmp_path, name):
    path = tmp_path / name
    path.write_text("prompt\nhello\n")
    with pytest.raises(DataError, match="unsupported container"):
        read_records(path)


def test_dataset_dict_without_train_split(tmp_path):
    datasets = pytest.importorskip("datasets")
    one, two = tmp_path / "one", tmp_path / "two"
    datasets.DatasetDict({"test": datasets.Dataset.from_dict({"a": [1]})}).save_to_disk(str(one))
    assert read_records(one) == [("row index 0", {"a": 1})]  # a lone split is the data
    datasets.DatasetDict({"test": datasets.Dataset.from_dict({"a": [1]}),
                          "dev": datasets.Dataset.from_dict({"a": [2]})}).save_to_disk(str(two))
    with pytest.raises(DataError, match=r"splits \['dev', 'test'\] and no 'train'"):
        read_records(two)


def test_every_bad_line_is_listed_in_file_order(tmp_path):
    path = tmp_path / "bad.jsonl"
    path.write_bytes(b'{"a": 1}\n{"a": \n"text"\n{"b": 2}\n\xff\n')
    assert scan_records(path) == [
        ("line 1", {"a": 1}),
        Unreadable("line 2", "not valid JSON: Expecting value at column 7 (the line ends there: is it cut "
                             "short?)"),
        Unreadable("line 3", "expected a JSON object, got string"), ("line 4", {"b": 2}),
        Unreadable("line 5", "not UTF-8 text (invalid start byte at byte 0 of the line); save the file as "
                             "UTF-8")]
    with pytest.raises(DataError) as err:
        read_records(path)
    assert str(err.value).splitlines() == [f"{path}: 3 bad rows; fix them and try again:",
                                           f"  {path}: line 2: not valid JSON: Expecting value at column 7 "
                                           "(the line ends there: is it cut short?)",
                                           f"  {path}: line 3: expected a JSON object, got string",
                                           f"  {path}: line 5: not UTF-8 text (invalid start byte at byte 0 "
                                           "of the line); save the file as UTF-8"]


def test_bad_rows_error_is_one_line_for_one_problem_and_caps_the_list():
    assert str(bad_rows_error("f.jsonl", ["line 3: bad"], " (note)")) == "f.jsonl: line 3: bad (note)"
    many = str(bad_rows_error("f.jsonl", [f"line {n}: bad" for n in range(1, MAX_LISTED + 8)])).splitlines()
    assert many[0] == f"f.jsonl: {MAX_LISTED + 7} bad rows; fix them and try again:"
    assert many[1:3] == ["  f.jsonl: line 1: bad", "  f.jsonl: line 2: bad"]
    assert len(many) == MAX_LISTED + 2 and many[-1] == "  ... and 7 more"


def test_a_json_array_gives_its_objects_with_line_and_index(tmp_path):
    path = tmp_path / "p.json"
    path.write_bytes('\ufeff [\n  {"a": 1},\n  {"a": "x\u2028y"}, {"a": 3}\n]\n'.encode())
    assert read_records(path) == [("line 2 (array index 0)", {"a": 1}),
                                  ("line 3 (array index 1)", {"a": "x\u2028y"}),
                                  ("line 3 (array index 2)", {"a": 3})]
    (tmp_path / "empty.json").write_text(" [ ]\n")
    assert read_records(tmp_path / "empty.json") == []
    (tmp_path / "lines.json").write_text('{"a": 1}\n{"a": 2}\n')  # .json holding JSON lines: still lines
    assert read_records(tmp_path / "lines.json") == [("line 1", {"a": 1}), ("line 2", {"a": 2})]


@pytest.mark.parametrize("text, problems", [
    ('[{"a": 1}, 2, "x", {"b": 2}]', [("line 1 (array index 1)", "expected a JSON object, got number"),
                                      ("line 1 (array index 2)", "expected a JSON object, got string")]),
    ('[{"a": 1},\n {"a": 2} {"a": 3}]', [("line 2", "not a valid JSON array: expected ',' or ']' after an "
                                                   "item at column 11")]),
    ('[{"a": 1},\n {"a": ', [("line 2", "not a valid JSON array: Expecting value at column 8 (the file ends "
                                       "there: is it cut short?)")]),
    ('[{"a": 1}] []', [("line 1", "not a valid JSON array: extra data after the array at column 12")]),
    ('[{"a": 1},]', [("line 1", "not a valid JSON array: Expecting value at column 11")]),
    ('{\n "a": 1\n}\n', [("line 1", "the file holds one JSON object spread over several lines; give one "
                                     "object per line (JSON Lines) or a JSON array of objects")]),
])
def test_a_bad_json_file_names_the_line_and_column(tmp_path, text, problems):
    path = tmp_path / "bad.json"
    path.write_text(text)
    found = [(row.where, row.problem) for row in scan_records(path) if isinstance(row, Unreadable)]
    assert found == problems


# --- the same records a batch at a time ------------------------------------------------------------

def _write_container(tmp_path, container: str):
    rows = [{"a": i, "b": f"x{i}"} for i in range(23)]
    if container == "jsonl":
        path = tmp_path / "p.jsonl"
        lines = ["\ufeff" + '{"a": 0, "b": "x0"}', "", '{"a": ', "[1]"]
        lines += [f'{{"a": {r["a"]}, "b": "{r["b"]}"}}' for r in rows[1:]]
        path.write_bytes(("\r\n".join(lines[:3]) + "\n" + "\n".join(lines[3:])).encode() + b"\n\xff")
    elif container == "parquet":
        path = tmp_path / "p.parquet"
        pq.write_table(pa.Table.from_pylist(rows), path, row_group_size=5)
    elif container == "json":
        path = tmp_path / "p.json"
        path.write_text("[" + ",\n".join(f'{{"a": {r["a"]}, "b": "{r["b"]}"}}' for r in rows) + "]")
    else:
        import datasets

        path = tmp_path / "folder"
        datasets.Dataset.from_list(rows).save_to_disk(str(path))
    return path


@pytest.mark.parametrize("container", ["jsonl", "parquet", "json", "folder"])
def test_batches_give_what_scan_records_gives_in_order(tmp_path, container):
    path = _write_container(tmp_path, container)
    batches = list(iter_record_batches(path, batch_rows=4))
    assert [row for batch in batches for row in batch] == scan_records(path)
    assert len(batches) >= 6 and all(0 < len(batch) <= 4 for batch in batches)
    if container == "jsonl":  # bad lines are rows of their own batch, in place
        assert isinstance(batches[0][1], Unreadable) and batches[0][1].where == "line 3"


def test_batches_of_a_missing_or_corrupt_file_are_a_data_error(tmp_path):
    with pytest.raises(DataError, match="no such file"):
        next(iter_record_batches(tmp_path / "nope.jsonl"))
    (tmp_path / "bad.parquet").write_bytes(b"PAR1 not really")
    with pytest.raises(DataError, match="bad.parquet: not a readable Parquet file"):
        next(iter_record_batches(tmp_path / "bad.parquet"))
