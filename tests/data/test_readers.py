"""The one reader of users' data files: JSONL, Parquet and datasets folders, each record with its
place ('line N' in JSONL, 'row index N' otherwise), and a DataError naming the file on bad input."""
from __future__ import annotations

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from prefpipe.data.readers import read_records
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
    (b'{"a": 1}\n{"a": \n', "line 2: not valid JSON"),
    (b'{"a": 1}\n[1]\n', "line 2: expected a JSON object, got list"),
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
