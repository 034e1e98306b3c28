"""The steps `bench/scale.py` measures, each run in a process of its own so its peak RSS is its own.

Every step calls the code the pipeline runs: the importer `prefpipe label import` calls (read,
checked and written a batch at a time), the label stage's preferences snapshot of imported data
(`import_for_training` writing Parquet part by part), the reward and DPO trainers' datasets
(`tokenise_parquet`: the preferences file read a record batch at a time through the stage's
selection, tokenised to a memory-mapped Arrow file) and one epoch of their batches (`pair_batch`),
and the DPO reference log-probs. A step prints one JSON line: per phase its rows, seconds, RSS
before it and the process's peak RSS at its end (ru_maxrss, so a later phase's peak includes the
earlier phases of the same step, as in the stage that runs them).

Run (scale.py does): python bench/scale_steps.py STEP WORKDIR N [--seed 0] [--threads 1] [--sample 2000]
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import sys
import time
from contextlib import contextmanager
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
ROOT = Path(__file__).resolve().parents[1]
STEPS = ("generate", "tokenizer", "import", "snapshot", "reward", "dpo", "logprobs")
# Common English words (Zipf-weighted below), so the embedded tokenizer splits them as it would text.
WORDS = """the of and to a in is it you that he was for on are with as his they be at one have this
from or had by hot word but what some we can out other were all there when up use your how said an
each she which do their time if will way about many then them write would like so these her long
make thing see him two has look more day could go come did number sound no most people my over
know water than call first who may down side been now find any new work part take get place made
live where after back little only round man year came show every good me give our under name very
through just form sentence great think say help low line differ turn cause much mean before move
right boy old too same tell does set three want air well also play small end put home read hand
port large spell add even land here must big high such follow act why ask men change went light
kind off need house picture try us again animal point mother world near build self earth father
head stand own page should country found answer school grow study still learn plant cover food sun
four between state keep eye never last let thought city tree cross farm hard start might story saw
far sea draw left late run while press close night real life few north open seem together next
white children begin got walk example ease paper group always music those both mark often letter
until mile river car feet care second book carry took science eat room friend began idea fish
mountain stop once base hear horse cut sure watch color face wood main enough plain girl usual
young ready above ever red list though feel talk bird soon body dog family direct pose leave song
measure door product black short numeral class wind question happen complete ship area half rock
order fire south problem piece told knew pass since top whole king space heard best hour better
true during hundred five remember step early hold west ground interest reach fast verb sing listen
six table travel less morning ten simple several vowel toward war lay against pattern slow center
love person money serve appear road map rain rule govern pull cold notice voice unit power town
fine certain fly fall lead cry dark machine note wait plan figure star box noun field rest correct
able pound done beauty drive stood contain front teach week final gave green oh quick develop ocean
warm free minute strong special mind behind clear tail produce fact street inch multiply nothing
course stay wheel full force blue object decide surface deep moon island foot system busy test
record boat common gold possible plane stead dry wonder laugh thousand ago ran check game shape
equate miss brought heat snow tire bring yes distant fill east paint language among""".split()


def peak_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def rss_mib() -> float:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


class Meter:
    """Phases of one step: rows, seconds, RSS before, peak RSS after."""

    def __init__(self) -> None:
        self.phases: list[dict] = []

    @contextmanager
    def phase(self, name: str, rows: int):
        before, began = rss_mib(), time.perf_counter()
        yield
        self.phases.append({"phase": name, "rows": rows, "seconds": time.perf_counter() - began,
                            "rss_before_mib": before, "peak_mib": peak_mib()})


def synth_pairs(path: Path, n: int, seed: int, chunk: int = 5000) -> None:
    """`n` TRL standard rows (prompt 30-150 words, chosen and rejected 50-300 each; a period every
    8-20 words), Zipf-weighted words: the same file for the same `n` and `seed`."""
    import numpy as np

    rng = np.random.default_rng(seed)
    vocab = np.array(WORDS, dtype=object)
    weights = 1.0 / np.arange(1, len(WORDS) + 1) ** 1.07
    with path.open("w") as out:
        for start in range(0, n, chunk):
            rows = min(chunk, n - start)
            lengths = np.stack([rng.integers(30, 151, rows), rng.integers(50, 301, rows),
                                rng.integers(50, 301, rows)], axis=1).ravel()
            words = vocab[rng.choice(len(WORDS), size=int(lengths.sum()), p=weights / weights.sum())]
            steps = rng.integers(8, 21, len(lengths)).tolist()  # words per sentence, per text
            texts = [_sentences(part.tolist(), step)
                     for part, step in zip(np.split(words, np.cumsum(lengths)[:-1]), steps)]
            out.writelines(json.dumps({"prompt": texts[i], "chosen": texts[i + 1],
                                       "rejected": texts[i + 2]}) + "\n" for i in range(0, len(texts), 3))


def _sentences(words: list[str], step: int) -> str:
    return ". ".join(" ".join(words[i:i + step]).capitalize() for i in range(0, len(words), step)) + "."


def write_tokenizer(folder: Path, params) -> None:
    """The embedded world's tokenizer, trained as `tasks.prepare` trains it."""
    from prefpipe.models.formatting import prompt_text
    from prefpipe.world.catalog import to_world_prompt, world_prompt_rows
    from prefpipe.world.corpus import sft_corpus
    from prefpipe.world.tokenizer import train_tokenizer

    rows = world_prompt_rows(params.world.max_operand, params.data.heldout_fraction, params.seed)
    train = [to_world_prompt(r) for r in rows if r["split"] == "train"]
    corpus = sft_corpus(train, params.world.sft_examples, params.world, params.seed)
    texts = [prompt_text(None, c["prompt"]) + " " + c["response"] for c in corpus]
    train_tokenizer(texts + [r["prompt"] for r in rows], params.model.vocab_size).save_pretrained(folder)


def files(workdir: Path, n: int) -> dict[str, Path]:
    return {"pairs": workdir / f"pairs-{n}.jsonl", "store": workdir / f"store-{n}" / "prefpipe.duckdb",
            "preferences": workdir / f"preferences-{n}.parquet", "tokenizer": workdir / "tokenizer"}


def step_import(meter: Meter, paths: dict, params, n: int) -> None:
    """`prefpipe label import FILE --format trl`: parse, validate and write the four tables."""
    from prefpipe.data.interchange import import_preferences
    from prefpipe.store import Store

    store = Store(paths["store"])
    with meter.phase("import", n):
        report = import_preferences(store, paths["pairs"], "trl", seed=params.seed,
                                    max_chars=params.label.importing.max_chars)
    assert report.new_pairs == n, report.summary()


def step_snapshot(meter: Meter, paths: dict, params, n: int) -> None:
    """The label stage with `label.imports`: `import_for_training` (a repeat import, adding nothing)
    handing its rows a batch at a time to data/preferences.parquet, as `tasks.label` does."""
    import pyarrow as pa

    from prefpipe.data.interchange import import_for_training
    from prefpipe.store import Store, parquet_parts
    from tasks.label import PREFERENCES_SCHEMA

    store = Store(paths["store"])
    with meter.phase("snapshot: import + write parquet", n):
        with parquet_parts(paths["preferences"], PREFERENCES_SCHEMA) as write:
            report = import_for_training(
                store, paths["pairs"], "trl",
                lambda rows: write(rows.append_column("round", pa.nulls(rows.num_rows, pa.int64()))),
                seed=params.seed, max_chars=params.label.importing.max_chars)
    assert report.new_pairs == 0 and report.preferences == n


def _trainer_data(meter: Meter, name: str, paths: dict, params, select, batch_size: int) -> None:
    """A trainer's dataset (`tokenise_parquet`: the preferences a record batch at a time through
    the stage's selection, to an Arrow file in the work dir), then one epoch of its batches
    (`epoch_batches` + `pair_batch`, as `supervised_loop` and `loss_fn` do)."""
    from prefpipe.data.tokenised_pairs import tokenise_parquet
    from prefpipe.models.io import load_tokenizer
    from prefpipe.train.common import epoch_batches
    from prefpipe.train.reward import pair_batch

    tokenizer = load_tokenizer(paths["tokenizer"], params.model.prompt_format)
    max_length = params.model.n_positions
    with meter.phase(f"{name} dataset", 0):
        data = tokenise_parquet(tokenizer, paths["preferences"], select, workdir=paths["pairs"].parent)
    meter.phases[-1]["rows"] = len(data)
    with data, meter.phase(f"{name} loader epoch", len(data)):
        for idx in epoch_batches(len(data), batch_size, 1.0, params.seed):
            pair_batch(tokenizer, data, idx, max_length)


def step_reward(meter: Meter, paths: dict, params, n: int) -> None:
    from prefpipe.evaluate.reward_eval import split_by_prompt

    def train_split(prefs):
        return split_by_prompt(prefs, params.reward.val_fraction, params.seed)[0]

    _trainer_data(meter, "reward", paths, params, train_split, params.reward.optim.batch_size)


def step_dpo(meter: Meter, paths: dict, params, n: int) -> None:
    from prefpipe.rounds.history import select_rounds

    def selected(prefs):
        return select_rounds(prefs, params.rounds.data, params.rounds.window, 1)

    _trainer_data(meter, "dpo", paths, params, selected, params.policy.dpo.optim.batch_size)


def step_logprobs(meter: Meter, paths: dict, params, n: int, threads: int, sample: int) -> None:
    """`reference_logprobs` on the first `sample` preferences, with params.model's GPT-2 (random init)."""
    import pyarrow.parquet as pq
    import torch

    from prefpipe.models.io import build_embedded_lm, load_tokenizer
    from prefpipe.train.dpo import reference_logprobs

    torch.set_num_threads(threads)
    tokenizer = load_tokenizer(paths["tokenizer"], params.model.prompt_format)
    first = next(pq.ParquetFile(paths["preferences"]).iter_batches(batch_size=sample))  # not the whole file
    pairs = first.to_pylist()
    model = build_embedded_lm(params.model, tokenizer, params.seed)
    with meter.phase(f"ref log-probs ({threads} thread{'s' * (threads > 1)})", len(pairs)):
        reference_logprobs(model, tokenizer, pairs, params.model.n_positions)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("step", choices=STEPS)
    parser.add_argument("workdir", type=Path)
    parser.add_argument("n", type=int)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--sample", type=int, default=2000)
    args = parser.parse_args()
    from prefpipe.config import load_params

    params = load_params(ROOT / "params.yaml", check_paths=False)
    paths, meter = files(args.workdir, args.n), Meter()
    if args.step == "generate":
        with meter.phase("generate", args.n):
            synth_pairs(paths["pairs"], args.n, args.seed)
    elif args.step == "tokenizer":
        write_tokenizer(paths["tokenizer"], params)
    elif args.step == "logprobs":
        step_logprobs(meter, paths, params, args.n, args.threads, args.sample)
    else:
        {"import": step_import, "snapshot": step_snapshot, "reward": step_reward,
         "dpo": step_dpo}[args.step](meter, paths, params, args.n)
    print(json.dumps(meter.phases))
    return 0


if __name__ == "__main__":
    sys.exit(main())
