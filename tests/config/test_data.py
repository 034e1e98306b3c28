"""The `data` section (prefpipe/config/data.py): the optional answer and tests columns."""
from __future__ import annotations

import pytest

from prefpipe.config import ParamsError, load_params
from tests.config.test_loader import REPO


def test_the_repo_params_spell_out_the_column_defaults():
    data = load_params(REPO / "params.yaml", check_paths=False).data
    assert (data.answer_column, data.tests_column) == ("answer", "tests")


@pytest.mark.parametrize("section, expected", [
    ("{answer_column: ref, tests_column: ref}",
     "data.answer_column and tests_column must name different columns, both are 'ref'"),
    ("{answer_column: prompt}", "data.answer_column 'prompt' is also data.prompt_column"),
    ("{tests_column: kind, category_column: kind}", "data.tests_column 'kind' is also data.category_column"),
])
def test_column_clashes_name_the_keys(tmp_path, section, expected):
    path = tmp_path / "params.yaml"
    path.write_text(f"data: {section}\n")
    with pytest.raises(ParamsError) as err:
        load_params(path, check_paths=False)
    assert str(err.value).startswith(f"{path}: {expected}")


def test_empty_column_names_turn_the_columns_off(tmp_path):
    path = tmp_path / "params.yaml"
    path.write_text("data: {answer_column: '', tests_column: ''}\n")
    data = load_params(path, check_paths=False).data
    assert (data.answer_column, data.tests_column) == ("", "")
