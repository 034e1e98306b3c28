"""torch.profiler view of one real SFT step (bench/training_floor.py --trainer sft --profile).

The step is the sft stage's own (`train_sft` in its loop, the stage's batch and order): the
profiler skips the first steps and records the third, from one step callback to the next. Its
collate (`prefpipe.train.sft.collate`) and grad-norm clip are wrapped in `record_function` for the
run, so their time is named; the code is not otherwise changed. Besides torch's table (top ops by
self CPU time), each op's self time is put in one of a few groups; "Python, between ops" is the
step's time that no op accounts for."""
from __future__ import annotations

import contextlib
import functools

GROUPS = (  # (group, op names); a name matches when it equals one or starts with one + "_"
    ("matmul (linear layers, LM head)", ("aten::mm", "aten::addmm", "aten::linear", "aten::matmul")),
    ("attention (bmm, softmax, SDPA)", ("aten::bmm", "aten::_softmax", "aten::_softmax_backward_data",
                                        "aten::_scaled_dot_product", "aten::scaled_dot_product")),
    ("log_softmax / gather (the loss)", ("aten::_log_softmax", "aten::_log_softmax_backward_data",
                                         "aten::gather", "aten::scatter_add", "aten::nll_loss")),
    ("dtype casts (autocast, .float())", ("aten::_to_copy", "aten::copy_", "aten::to")),
)
SCOPES = {"Optimizer.step": "optimizer step (AdamW)", "Optimizer.zero_grad": "optimizer step (AdamW)",
          "bench:collate": "collate (Python lists -> tensors)", "bench:clip_grad_norm": "grad-norm clip",
          "aten::dropout": "dropout forward (bernoulli mask, scale)",
          "aten::native_dropout": "dropout forward (bernoulli mask, scale)"}


@contextlib.contextmanager
def named_scopes():
    """collate and Runtime.clip_grad_norm wrapped in record_function while the block runs."""
    from torch.profiler import record_function

    import prefpipe.train.sft as sft
    from prefpipe.train.distributed import Runtime

    def scoped(name, fn):
        @functools.wraps(fn)
        def run(*args, **kwargs):
            with record_function(name):
                return fn(*args, **kwargs)
        return run

    own_collate, own_clip = sft.collate, Runtime.clip_grad_norm
    sft.collate = scoped("bench:collate", own_collate)
    Runtime.clip_grad_norm = scoped("bench:clip_grad_norm", own_clip)
    try:
        yield
    finally:
        sft.collate, Runtime.clip_grad_norm = own_collate, own_clip


def group_of(event) -> str:
    node = event
    while node is not None:
        for prefix, group in SCOPES.items():
            if node.name.startswith(prefix):
                return group
        node = node.cpu_parent
    for group, names in GROUPS:
        if any(event.name == n or event.name.startswith(n + "_") for n in names):
            return group
    if event.name.startswith("autograd::") or event.name.rstrip("0123456789").endswith("Backward"):
        return "autograd engine (backward bookkeeping)"
    return "other ops (layer norm, GELU, dropout, adds, embedding, ...)"


def grouped(events) -> tuple[float, dict[str, float]]:
    """(the step's microseconds, microseconds per group) of a profiled step's events."""
    steps = [e for e in events if e.name.startswith("ProfilerStep")]
    total = sum(e.cpu_time_total for e in steps)
    groups: dict[str, float] = {"Python, between ops": sum(e.self_cpu_time_total for e in steps)}
    for event in events:
        if event.name.startswith("ProfilerStep"):
            continue
        group = group_of(event)
        groups[group] = groups.get(group, 0.0) + event.self_cpu_time_total
    return total, groups


def profile_sft(world, precision: str, rows: int = 12) -> None:
    """Print torch's table and the groups for one step of the sft stage's loop."""
    import copy

    from floor_sft import others_load, prefpipe_sft_run
    from torch.profiler import ProfilerActivity, profile, schedule

    with named_scopes(), profile(activities=[ProfilerActivity.CPU],
                                 schedule=schedule(wait=1, warmup=1, active=1, repeat=1)) as prof:
        import prefpipe.train.loop as loop

        own_notify = loop.notify
        loop.notify = lambda callbacks, info: (prof.step(), own_notify(callbacks, info))[1]
        try:
            _, others = others_load(lambda: prefpipe_sft_run(world, copy.deepcopy(world.lm), precision, 3))
        finally:
            loop.notify = own_notify
    print(f"\nsft {precision}, one step of train_sft (batch {world.optim.batch_size}):")
    print(prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=rows))
    total, groups = grouped(prof.events())
    print(f"step {total / 1e3:.1f} ms (profiled, so slower than unprofiled); other processes kept "
          f"{others:.2f} cores busy meanwhile")
    for group, micros in sorted(groups.items(), key=lambda kv: -kv[1]):
        print(f"  {group:58} {micros / 1e3:8.1f} ms {100 * micros / total:5.1f}%")
