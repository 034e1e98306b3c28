"""`prefpipe label serve` and `annotators add` in process, without this checkout's store."""
from __future__ import annotations

import argparse

import pytest

import flows.label_cli as label_cli
from prefpipe.annotate.rules import AnnotationError
from prefpipe.config import load_params


def parse(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    label_cli.add_label_commands(parser.add_subparsers(dest="command"))
    return parser.parse_args(["label", *argv])


def test_serve_gets_the_params_lock_timeout_and_extra_hosts(monkeypatch):
    import prefpipe.annotate.app.server as server

    params = load_params(label_cli.ROOT / "params.yaml")
    monkeypatch.setattr(label_cli, "_store", lambda args: (None, params))
    calls = []
    monkeypatch.setattr(server, "serve", lambda *args, **kwargs: calls.append((args, kwargs)))
    args = parse("serve", "--port", "9999", "--allow-host", "labels.example")
    assert args.func(args) == 0
    (store_path,), kwargs = calls[0]
    assert store_path == str(label_cli.ROOT / params.store.path)
    assert kwargs["lock_timeout_s"] == params.store.lock_timeout_s
    assert kwargs["port"] == 9999 and "labels.example" in kwargs["allowed_hosts"]
    args = parse("serve")
    args.func(args)
    assert calls[1][1]["allowed_hosts"] is None and calls[1][1]["log_level"] == "info"


def test_a_bad_annotator_id_is_refused_before_the_store_opens(monkeypatch):
    monkeypatch.setattr(label_cli, "_store", lambda args: pytest.fail("the store was opened"))
    args = parse("annotators", "add", "bad id")
    with pytest.raises(AnnotationError, match="annotator id 'bad id'"):
        args.func(args)


# --- import and queue, against a real store in tmp_path ------------------------------------------

@pytest.fixture
def cli_store(tmp_path, monkeypatch):
    """The CLI's `_store` on a fresh DuckDB file, with this checkout's params (max_chars 20)."""
    import dataclasses

    from prefpipe.store import Store

    params = load_params(label_cli.ROOT / "params.yaml")
    importing = dataclasses.replace(params.label.importing, max_chars=20)
    label = dataclasses.replace(params.label, importing=importing)
    params = dataclasses.replace(params, label=label)
    store = Store(tmp_path / "store.duckdb", lock_timeout_s=10)
    monkeypatch.setattr(label_cli, "_store", lambda args: (store, params))
    return store


def write_prefs(path, rows) -> str:
    import json

    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return str(path)


PREFS = [{"prompt": f"q{n}", "chosen": f"good {n}", "rejected": f"bad {n}"} for n in range(3)]


def run(*argv: str) -> int:
    args = parse(*argv)
    return args.func(args)


def test_import_takes_the_import_source_and_label_status_counts_no_human(cli_store, tmp_path, capsys):
    path = write_prefs(tmp_path / "prefs.jsonl", PREFS)
    assert run("import", path, "--format", "trl") == 0
    out = capsys.readouterr().out
    assert f"{path} (trl): 3 rows, 3 preferences" in out and "3 labels (source 'import')" in out
    assert cli_store.query("SELECT DISTINCT source FROM labels")["source"].to_pylist() == ["import"]
    run("import", path, "--format", "trl", "--source", "human")  # even when told 'human'
    assert run("status") == 0
    status = capsys.readouterr().out
    assert "human labels: 0; pending tasks: 0" in status and '"human_alpha": null' in status


def test_import_refuses_an_over_long_field_unless_told_to_truncate(cli_store, tmp_path, capsys):
    from prefpipe.errors import DataError

    long = {"prompt": "q", "chosen": "g" * 30, "rejected": "b"}
    path = write_prefs(tmp_path / "long.jsonl", [*PREFS, long])
    with pytest.raises(DataError, match=r"long\.jsonl: line 4: the chosen response has 30 characters, over "
                                        r"the limit of 20 \(label.importing.max_chars\)"):
        run("import", path, "--format", "trl")
    assert cli_store.count("labels") == 0
    assert run("import", path, "--format", "trl", "--truncate") == 0
    captured = capsys.readouterr()
    assert "warning: " in captured.err and "of 1 rows to 20 characters" in captured.err
    assert "4 labels" in captured.out and "1 rows cut to fit" in captured.out


def test_queue_puts_a_file_s_pairs_in_front_of_annotators(cli_store, tmp_path, capsys):
    from prefpipe.annotate.annotation import add_annotator, next_task
    from prefpipe.annotate.rules import AnnotationError

    path = write_prefs(tmp_path / "prefs.jsonl", PREFS)
    add_annotator(cli_store, "ann1")
    with pytest.raises(AnnotationError, match=r"annotators \['ann2'\] are not registered"):
        run("queue", path, "--format", "trl", "--annotators", "ann1,ann2")
    assert cli_store.count("labels") == 0  # a bad request writes nothing
    for annotator in ("ann2", "ann3"):
        add_annotator(cli_store, annotator)
    with pytest.raises(AnnotationError, match="overlap 4 must be between 1 and the number of annotators"):
        run("queue", path, "--format", "trl", "--annotators", "ann1,ann2,ann3", "--overlap", "4")
    capsys.readouterr()
    assert run("queue", path, "--format", "trl", "--annotators", "ann1, ann2,ann3", "--overlap", "2") == 0
    assert "queued 6 new tasks: the file's 3 pairs, each for 2 of ann1, ann2, ann3" in capsys.readouterr().out
    task = next_task(cli_store, "ann1")
    assert task.prompt in {"q0", "q1", "q2"} and {task.first, task.second} == {f"good {task.prompt[1]}",
                                                                           f"bad {task.prompt[1]}"}
    run("queue", path, "--format", "trl", "--annotators", "ann1,ann2,ann3", "--overlap", "2")
    assert "queued 0 new tasks" in capsys.readouterr().out  # queued once, like the import
    assert cli_store.count("annotation_tasks") == 6 and cli_store.count("labels") == 3
