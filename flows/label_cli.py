"""`prefpipe label ...`: the annotation app, annotators, queues, import and export of preferences."""
from __future__ import annotations

import argparse
import json
import sys

from flows.env import ROOT
from prefpipe.vocab import Format, LabelSource


def _store(args):
    from prefpipe.config import load_params
    from prefpipe.store import Store

    params = load_params(ROOT / "params.yaml")
    return Store(ROOT / params.store.path, params.store.lock_timeout_s), params


def cmd_serve(args) -> int:
    """The app under uvicorn in this process; SIGTERM or SIGINT stops it and exits 0
    (flows/children.py)."""
    from flows.children import serve_until_stopped
    from prefpipe.annotate.app.server import LOOPBACK, serve

    _, params = _store(args)
    print(f"annotation app on http://{args.host}:{args.port}/login  (store {params.store.path}; "
          "Ctrl-C stops it)", flush=True)
    allowed_hosts = [*LOOPBACK, args.host, *args.allow_host] if args.allow_host else None
    return serve_until_stopped("prefpipe label serve", lambda: serve(
        str(ROOT / params.store.path), host=args.host, port=args.port, rubric_path=args.rubric,
        lock_timeout_s=params.store.lock_timeout_s, allowed_hosts=allowed_hosts,
        metrics_path=str(ROOT / "metrics" / "label.json"), log_level=args.log_level))


def cmd_annotators(args) -> int:
    from prefpipe.annotate import annotation
    from prefpipe.annotate.rules import AnnotationError, check_annotator_id

    if args.action in ("add", "revoke"):
        check_annotator_id(args.id)  # a bad id: one line (AnnotationError), before the store opens
    store, _ = _store(args)
    if args.action == "add":
        token = annotation.add_annotator(store, args.id, is_admin=args.admin)
        print(f"{args.id}: sign in at /login with token {token}")
        print("(only a hash is stored: keep the token, or run this again to issue a new one; "
              "the old token and its sessions stop working)")
    elif args.action == "revoke":
        ended = store.sessions.revoke(args.id)
        if ended is None:
            raise AnnotationError(f"annotator id {args.id!r}: no such annotator "
                                  "(`prefpipe label annotators list` shows them)")
        print(f"{args.id}: revoked; their token no longer works and {ended} signed-in session(s) "
              "ended (`annotators add` issues a new token)")
    else:
        for row in annotation.progress(store):
            print(json.dumps(row, default=str))
    return 0


def cmd_status(args) -> int:
    from prefpipe.annotate.annotation import gold_accuracy, human_labels
    from prefpipe.annotate.human_queue import pending_tasks
    from prefpipe.label.agreement import agreement_report

    store, _ = _store(args)
    labels = human_labels(store)
    print(f"human labels: {len(labels)}; pending tasks: {pending_tasks(store)}")
    for annotator, (correct, n) in sorted(gold_accuracy(store).items()):
        print(f"  {annotator}: gold accuracy {correct}/{n}")
    print(json.dumps(agreement_report(labels, "human_"), indent=2, default=str))
    return 0


def cmd_import(args) -> int:
    store, params = _store(args)
    _import_file(args, store, params)
    return 0


def _import_file(args, store, params):
    """Import `args.path` as `label import` and `label queue` do; prints the summary (and a warning
    for rows cut to label.importing.max_chars)."""
    from prefpipe.data.interchange import import_preferences

    limit = params.label.importing.max_chars
    report = import_preferences(store, args.path, args.format, source=args.source,
                                category_column=args.category_column, seed=params.seed,
                                max_chars=limit, truncate=args.truncate)
    if report.truncated:
        print(f"warning: {args.path}: cut the prompt or a response of {report.truncated} rows to {limit} "
              "characters (label.importing.max_chars)", file=sys.stderr)
    print(report.summary())
    return report


def cmd_queue(args) -> int:
    from prefpipe.annotate.human_queue import check_queue_request, queue_pairs

    store, params = _store(args)
    annotators = [a.strip() for a in args.annotators.split(",") if a.strip()]
    overlap = params.label.human.overlap if args.overlap is None else args.overlap
    check_queue_request(store, annotators, overlap)  # before the import: nothing written on a bad request
    report = _import_file(args, store, params)
    added = queue_pairs(store, report.pair_ids, annotators, overlap, params.seed)
    print(f"queued {added} new tasks: the file's {report.preferences} pairs, each for {overlap} of "
          f"{', '.join(annotators)}; they label them at /login (`prefpipe label serve`)")
    return 0


def cmd_export(args) -> int:
    from prefpipe.data.interchange import export_preferences

    store, _ = _store(args)
    snapshot = str(ROOT / args.preferences) if args.preferences else None
    count = export_preferences(store, args.out, args.format, preferences_path=snapshot)
    print(f"{count} preference rows -> {args.out}")
    return 0


def add_label_commands(sub: argparse._SubParsersAction) -> None:
    label = sub.add_parser("label", help="human annotation app, annotators, import/export of preferences")
    commands = label.add_subparsers(dest="label_command", required=True)
    serve = commands.add_parser("serve", help="run the annotation web app (127.0.0.1)")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8765)
    serve.add_argument("--rubric", default=None, help="Markdown guidelines shown to annotators")
    serve.add_argument("--allow-host", action="append", default=None,
                       help="a further Host header to accept (e.g. behind a proxy); repeatable")
    serve.add_argument("--log-level", default="info", help="uvicorn's log level")
    serve.set_defaults(func=cmd_serve)
    annotators = commands.add_parser("annotators",
                                     help="add an annotator (prints a token), revoke one, or list them")
    actions = annotators.add_subparsers(dest="action", required=True)
    add = actions.add_parser("add", help="add an annotator, or issue a new token for one")
    add.add_argument("id")
    add.add_argument("--admin", action="store_true", help="may open /admin")
    add.set_defaults(func=cmd_annotators)
    revoke = actions.add_parser("revoke", help="end an annotator's sessions and make their token unusable")
    revoke.add_argument("id")
    revoke.set_defaults(func=cmd_annotators)
    actions.add_parser("list", help="every annotator's progress").set_defaults(func=cmd_annotators)
    status = commands.add_parser("status", help="human labels, pending tasks, gold accuracy, agreement")
    status.set_defaults(func=cmd_status)
    imp = commands.add_parser("import", help="import preference data into the store")
    _import_arguments(imp)
    imp.set_defaults(func=cmd_import)
    queue = commands.add_parser("queue", help="import preference data and put its pairs in front of "
                                              "annotators (tasks in their queues)")
    _import_arguments(queue)
    queue.add_argument("--annotators", required=True, help="comma-separated annotator ids (registered "
                                                           "with `annotators add`)")
    queue.add_argument("--overlap", type=int, default=None,
                       help="annotators per pair (default: label.human.overlap)")
    queue.set_defaults(func=cmd_queue)
    exp = commands.add_parser("export", help="export preferences (.jsonl or .parquet by extension)")
    exp.add_argument("out")
    exp.add_argument("--format", required=True, choices=Format.values())
    exp.add_argument("--preferences", default="data/preferences.parquet",
                     help="the label stage's preferences ('' = decisive labels in the store)")
    exp.set_defaults(func=cmd_export)


def _import_arguments(command: argparse.ArgumentParser) -> None:
    command.add_argument("path", help=".jsonl, .json (lines or an array), .parquet or a datasets folder")
    command.add_argument("--format", required=True, choices=Format.values())
    command.add_argument("--source", default=LabelSource.IMPORT.value, choices=LabelSource.values(),
                         help="the labels' source (default 'import'; imported labels never count as "
                              "annotators' answers, whatever the source)")
    command.add_argument("--category-column", default=None)
    command.add_argument("--truncate", action="store_true",
                         help="cut prompts and responses longer than label.importing.max_chars (with a "
                              "warning) instead of refusing their rows")

