"""Users' prompt files: Parquet, JSONL and datasets folders, with row-level errors (the file and
the place: 'line N' in JSONL, 'row index N' otherwise), and their optional reference answers and tests."""
from __future__ import annotations

import json
import logging
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from prefpipe.data.prompts_io import LONG_ANSWER, has_reference, load_prompt_rows
from prefpipe.errors import DataError
from prefpipe.verify.math_answer import MAX_ANSWER_CHARS


def write_jsonl(path: Path, records: list) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    return path


def load(path):
    return load_prompt_rows(path, "prompt", "category")


def test_jsonl_rows_with_default_category(tmp_path):
    path = write_jsonl(tmp_path / "p.jsonl", [{"prompt": "Hi there", "category": "chat"},
                                               {"prompt": "  Padded  "},
                                               {"prompt": "x", "category": None}])
    assert load(path) == [{"prompt": "Hi there", "category": "chat"},
                          {"prompt": "Padded", "category": "default"},
                          {"prompt": "x", "category": "default"}]


def test_bad_json_line_names_file_and_line(tmp_path):
    path = tmp_path / "bad.jsonl"
    path.write_text('{"prompt": "a"}\n{"prompt": "b"}\n{"prompt": oops}\n{"prompt": "d"}\n')
    with pytest.raises(DataError) as err:
        load(path)
    assert str(path) in str(err.value) and "line 3" in str(err.value)


def test_json_line_that_is_not_an_object(tmp_path):
    path = tmp_path / "list.jsonl"
    path.write_text('{"prompt": "a"}\n["prompt", "b"]\n')
    with pytest.raises(DataError, match="line 2: expected a JSON object"):
        load(path)


def test_missing_prompt_column_names_column_and_row(tmp_path):
    path = write_jsonl(tmp_path / "p.jsonl", [{"prompt": "a"}, {"text": "b"}])
    with pytest.raises(DataError) as err:
        load(path)
    message = str(err.value)
    assert str(path) in message and "line 2" in message and "'prompt'" in message
    assert "text" in message  # the columns that are there


def test_custom_prompt_column(tmp_path):
    path = write_jsonl(tmp_path / "p.jsonl", [{"question": "q1", "kind": "k"}])
    assert load_prompt_rows(path, "question", "kind") == [{"prompt": "q1", "category": "k"}]
    with pytest.raises(DataError, match="missing column 'prompt'"):
        load(path)


@pytest.mark.parametrize("bad", ["", "   ", None, 5])
def test_empty_or_non_text_prompt_is_rejected(tmp_path, bad):
    path = write_jsonl(tmp_path / "p.jsonl", [{"prompt": "ok"}, {"prompt": bad}])
    with pytest.raises(DataError, match="line 2: column 'prompt' must be non-empty text"):
        load(path)


def test_non_text_category_is_rejected(tmp_path):
    path = write_jsonl(tmp_path / "p.jsonl", [{"prompt": "ok", "category": 5}])
    with pytest.raises(DataError, match="line 1: column 'category' must be text"):
        load(path)


def test_blank_lines_are_skipped(tmp_path):
    path = tmp_path / "p.jsonl"
    path.write_text('{"prompt": "a"}\n\n   \n{"prompt": "b"}\n')
    assert [r["prompt"] for r in load(path)] == ["a", "b"]


def test_empty_file_has_no_rows(tmp_path):
    path = tmp_path / "empty.jsonl"
    path.write_text("\n")
    with pytest.raises(DataError, match="no rows"):
        load(path)


def test_duplicates_are_dropped_keeping_first_with_a_warning_that_counts_them(tmp_path, caplog):
    path = write_jsonl(tmp_path / "p.jsonl", [{"prompt": "a", "category": "x"}, {"prompt": "b"},
                                               {"prompt": "a", "category": "x"}, {"prompt": "b"}])
    with caplog.at_level(logging.WARNING, logger="prefpipe"):
        assert load(path) == [{"prompt": "a", "category": "x"}, {"prompt": "b", "category": "default"}]
    assert f"{path}: dropped 2 duplicate prompt row(s), e.g. line 3 repeats line 1" in caplog.text


def test_duplicates_that_differ_only_in_whitespace_are_dropped(tmp_path, caplog):
    path = write_jsonl(tmp_path / "p.jsonl", [{"prompt": "a"}, {"prompt": " a "}])
    with caplog.at_level(logging.WARNING, logger="prefpipe"):
        assert load(path) == [{"prompt": "a", "category": "default"}]
    assert "dropped 1 duplicate prompt row(s)" in caplog.text


def test_a_prompt_repeated_with_another_category_names_both_rows(tmp_path):
    path = write_jsonl(tmp_path / "p.jsonl", [{"prompt": "a", "category": "x"},
                                               {"prompt": "b"}, {"prompt": "a", "category": "y"}])
    with pytest.raises(DataError, match=r"line 3: prompt 'a' is also at line 1 with other values "
                                        r"\(category 'x' vs 'y'\)"):
        load(path)


def test_parquet_input(tmp_path):
    path = tmp_path / "p.parquet"
    pq.write_table(pa.table({"prompt": ["one", "two", "one"], "category": ["c1", None, "c1"],
                             "extra": [1, 2, 3]}), path)
    assert load(path) == [{"prompt": "one", "category": "c1"},
                          {"prompt": "two", "category": "default"}]


def test_corrupt_parquet_is_a_data_error(tmp_path):
    path = tmp_path / "broken.parquet"
    path.write_bytes(b"not parquet at all")
    with pytest.raises(DataError, match="not a readable Parquet file"):
        load(path)


def test_datasets_folder_input(tmp_path):
    datasets = pytest.importorskip("datasets")
    folder = tmp_path / "ds"
    datasets.Dataset.from_dict({"prompt": ["p1", "p2"], "category": ["a", "b"]}).save_to_disk(
        str(folder))
    assert load(folder) == [{"prompt": "p1", "category": "a"}, {"prompt": "p2", "category": "b"}]


def test_dataset_dict_folder_uses_train_split(tmp_path):
    datasets = pytest.importorskip("datasets")
    folder = tmp_path / "dd"
    datasets.DatasetDict({
        "test": datasets.Dataset.from_dict({"prompt": ["t"]}),
        "train": datasets.Dataset.from_dict({"prompt": ["tr1", "tr2"]}),
    }).save_to_disk(str(folder))
    assert [r["prompt"] for r in load(folder)] == ["tr1", "tr2"]


def test_line_numbers_count_blank_lines(tmp_path):
    path = tmp_path / "p.jsonl"
    path.write_text('{"prompt": "a"}\n\n{"text": "b"}\n')
    with pytest.raises(DataError, match="line 3"):
        load(path)


def test_parquet_bad_row_names_its_row_index(tmp_path):
    path = tmp_path / "p.parquet"
    pq.write_table(pa.table({"prompt": ["ok", "  "]}), path)
    with pytest.raises(DataError, match=r"p\.parquet: row index 1: column 'prompt' must be non-empty"):
        load(path)


# Optional reference answers and tests (data.answer_column, data.tests_column): what the verifier checks.

def test_answers_and_tests_are_read_and_rows_without_stay_as_they_were(tmp_path):
    path = write_jsonl(tmp_path / "p.jsonl", [
        {"prompt": "What is 6 times 7?", "category": "math", "answer": "42"},
        {"prompt": "Half of one?", "category": "math", "answer": 0.5},
        {"prompt": "Ten squared?", "category": "math", "answer": 100},
        {"prompt": "Write add(a, b).", "category": "code",
         "tests": ["assert add(1, 2) == 3", " assert add(0, 0) == 0 "]},
        {"prompt": "Write neg(x).", "category": "code",
         "tests": "assert neg(1) == -1\n\n  assert neg(0) == 0\n"},
        {"prompt": "Say hi.", "category": "chat", "answer": None, "tests": "  "},
        {"prompt": "Say bye.", "category": "chat", "answer": "", "tests": []}])
    assert load(path) == [
        {"prompt": "What is 6 times 7?", "category": "math", "answer": "42"},
        {"prompt": "Half of one?", "category": "math", "answer": "0.5"},
        {"prompt": "Ten squared?", "category": "math", "answer": "100"},
        {"prompt": "Write add(a, b).", "category": "code",
         "tests": ["assert add(1, 2) == 3", "assert add(0, 0) == 0"]},
        {"prompt": "Write neg(x).", "category": "code",
         "tests": ["assert neg(1) == -1", "assert neg(0) == 0"]},
        {"prompt": "Say hi.", "category": "chat"},
        {"prompt": "Say bye.", "category": "chat"}]


def test_other_column_names_and_empty_names_that_read_nothing(tmp_path):
    path = write_jsonl(tmp_path / "p.jsonl", [{"prompt": "q", "final": 7, "answer": "ignored",
                                               "tests": "not python ("}])
    assert load_prompt_rows(path, "prompt", "category", "final", "") == [
        {"prompt": "q", "category": "default", "answer": "7"}]
    assert load_prompt_rows(path, "prompt", "category", "", "") == [{"prompt": "q", "category": "default"}]


def test_parquet_list_column_of_tests(tmp_path):
    path = tmp_path / "p.parquet"
    pq.write_table(pa.table({"prompt": ["a", "b"], "tests": [["assert f() == 1"], None],
                             "answer": [None, "2"]}), path)
    assert load(path) == [{"prompt": "a", "category": "default", "tests": ["assert f() == 1"]},
                          {"prompt": "b", "category": "default", "answer": "2"}]


def test_a_row_with_both_answer_and_tests_names_file_line_and_columns(tmp_path):
    path = write_jsonl(tmp_path / "p.jsonl", [{"prompt": "a", "answer": "1"},
                                               {"prompt": "b", "answer": "2", "tests": ["assert True"]}])
    with pytest.raises(DataError) as err:
        load(path)
    assert str(err.value).startswith(f"{path}: line 2: both 'answer' and 'tests' are set")


@pytest.mark.parametrize("bad", [42, ["assert f() == 1", 3], {"t": "assert x"}, ["assert f() == 1", " "]])
def test_tests_of_the_wrong_type_name_line_and_column(tmp_path, bad):
    path = write_jsonl(tmp_path / "p.jsonl", [{"prompt": "a"}, {"prompt": "b"},
                                               {"prompt": "c", "tests": bad}])
    with pytest.raises(DataError) as err:
        load(path)
    assert str(err.value).startswith(f"{path}: line 3: column 'tests': must be a list of Python assert")


def test_a_test_that_is_not_python_names_line_column_and_test(tmp_path):
    path = write_jsonl(tmp_path / "p.jsonl", [{"prompt": "a",
                                               "tests": "assert f(1) == 1\nassert f(2) == = 2"}])
    with pytest.raises(DataError) as err:
        load(path)
    message = str(err.value)
    assert message.startswith(f"{path}: line 1: column 'tests': test 2 is not valid Python (")
    assert "'assert f(2) == = 2'" in message


def test_a_test_without_an_assert_could_never_fail(tmp_path):
    path = tmp_path / "p.parquet"
    pq.write_table(pa.table({"prompt": ["a", "b"], "tests": [["assert f() == 1"], ["f()"]]}), path)
    with pytest.raises(DataError, match=r"row index 1: column 'tests': test 1 has no assert statement"):
        load(path)


@pytest.mark.parametrize("bad", [True, [1, 2], {"x": 1}])
def test_an_answer_that_is_not_text_or_a_number(tmp_path, bad):
    path = write_jsonl(tmp_path / "p.jsonl", [{"prompt": "a", "answer": bad}])
    with pytest.raises(DataError, match="line 1: column 'answer' must be the reference final answer"):
        load(path)


def test_a_prompt_repeated_with_another_answer_names_both_rows(tmp_path):
    path = write_jsonl(tmp_path / "p.jsonl", [{"prompt": "a", "answer": "1"}, {"prompt": "a"}])
    with pytest.raises(DataError, match=r"line 2: prompt 'a' is also at line 1 with other values "
                                        r"\(answer '1' vs None\)"):
        load(path)


def test_long_answers_are_warned_about_and_the_limit_is_the_verifiers(tmp_path, caplog):
    path = write_jsonl(tmp_path / "p.jsonl", [{"prompt": "a", "answer": "x" * 201},
                                               {"prompt": "b", "answer": "y" * 200}])
    with caplog.at_level(logging.WARNING, logger="prefpipe"):
        load(path)
    assert "1 answer(s) in column 'answer' are over 200 characters" in caplog.text
    assert LONG_ANSWER == MAX_ANSWER_CHARS


def test_has_reference_counts_only_given_values():
    assert has_reference({"answer": 0}, "answer", "tests")  # 0 is an answer
    assert has_reference({"tests": "assert x"}, "answer", "tests")
    assert not has_reference({"answer": " ", "tests": []}, "answer", "tests")
    assert not has_reference({"answer": "1"}, "", "tests")
