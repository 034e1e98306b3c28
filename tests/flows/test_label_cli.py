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
