"""Human annotation: the rules of annotation queues, the label stage's human queue, the web app.

- `rules`: what a valid annotator id, answer and rationale are; the shown order <-> a/b mapping;
  token and task ids.
- `dealing`: who gets which pair (least-loaded annotators, seeded ties), gold items every k tasks,
  the shown order of each task.
- `annotation`: the operations the app, the CLI and the label stage call (add an annotator, next
  task, submit...), each the rules above around one `store.annotations` method.
- `human_queue`: the label stage's side (queue pairs, collect answers, count what is pending).
- `app`: the FastAPI annotation app (`prefpipe label serve`).

Every SQL statement is the store's (`prefpipe.store.annotations`)."""
