"""One module per DVC stage: read params, call the library, write outputs and metrics.

A stage process (`python -m tasks.NAME`) imports with Python's cyclic garbage collector off: torch
and transformers make some 600,000 objects as they load, and each collection meanwhile walks those
made so far (0.7-0.9 s of CPU of a torch stage's ~4 s of imports). `_stage.run_stage` freezes what
start-up made (later collections skip it, the interpreter's exit included: another ~0.8 s) and
turns the collector back on. A flow or a test that imports tasks.* is left as it is."""
import gc
import sys

# sys.argv[0] is "-m" only while runpy imports this package for `python [-u] -m tasks.NAME`
if sys.argv[:1] == ["-m"] and any(flag.startswith("-") and flag.endswith("m") and module.startswith("tasks.")
                                  for flag, module in zip(sys.orig_argv, sys.orig_argv[1:])):
    gc.disable()
