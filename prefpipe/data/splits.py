"""Your prompts' splits, counted before any stage runs: every split the stages need must have rows.

Prompts split twice, each by its own salted hash (`prefpipe.seeds.split_position`): held out for
evaluation (`data.heldout_fraction`), and, among the training prompts, the reward model's
validation prompts (`reward.val_fraction`). On a small prompt file a fraction can leave a split
empty; the stage that needs it would fail minutes into the run, so `check_splits` fails first and
names the knob, with the smallest value that would give the split a prompt.

The embedded world splits its own prompts by family (`world.prompts.split_prompts`), which always
holds out at least one per family; only users' prompts are checked here."""
from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

from prefpipe.config import Params, ParamsError
from prefpipe.config.model_refs import resolve
from prefpipe.data.prompts_io import load_prompt_rows
from prefpipe.seeds import SplitPurpose, split_position
from prefpipe.world.prompts import prompt_id

log = logging.getLogger("prefpipe")
FEW_HELDOUT = 20  # fewer held-out prompts than this: the win rate's interval is wide


@dataclass(frozen=True)
class SplitCounts:
    prompts: int
    heldout: int
    train: int
    reward_val: int
    heldout_needs: float  # the smallest fraction that holds out one prompt
    reward_val_needs: float  # the smallest val_fraction that gives validation one training prompt


def count_splits(prompt_ids: list[str], heldout_fraction: float, val_fraction: float,
                 seed: int) -> SplitCounts:
    """How many prompts each split gets, as prepare (held out) and train_reward (validation) split."""
    heldout_pos = {p: split_position(seed, SplitPurpose.HELDOUT, p) for p in prompt_ids}
    train = [p for p in prompt_ids if heldout_pos[p] >= heldout_fraction]
    val_pos = [split_position(seed, SplitPurpose.REWARD_VALIDATION, p) for p in train]
    return SplitCounts(
        prompts=len(prompt_ids), heldout=len(prompt_ids) - len(train), train=len(train),
        reward_val=sum(pos < val_fraction for pos in val_pos),
        heldout_needs=min(heldout_pos.values(), default=1.0),
        reward_val_needs=min(val_pos, default=1.0))


def check_splits(params: Params, source: str | Path) -> SplitCounts | None:
    """Raise ParamsError naming the knob when a split of your prompts would be empty; warn when the
    held-out split is small. None for the embedded world."""
    if params.embedded_data:
        return None
    data = params.data
    path = resolve(data.prompts, Path(source).resolve().parent)
    rows = load_prompt_rows(path, data.prompt_column, data.category_column, data.answer_column,
                            data.tests_column)
    counts = count_splits([prompt_id(r["prompt"]) for r in rows], data.heldout_fraction,
                          params.reward.val_fraction, params.seed)
    mine = f"your {counts.prompts} prompts ({data.prompts})"
    if counts.heldout == 0:
        raise ParamsError(f"{source}: data.heldout_fraction: {data.heldout_fraction} holds out none "
                          f"of {mine}, so evaluate has nothing to judge; raise it above "
                          f"{counts.heldout_needs:.3f} or add prompts")
    if counts.train == 0:
        raise ParamsError(f"{source}: data.heldout_fraction: {data.heldout_fraction} leaves none of "
                          f"{mine} for training; lower it")
    if counts.reward_val == 0:
        raise ParamsError(f"{source}: reward.val_fraction: {params.reward.val_fraction} puts none of "
                          f"the {counts.train} training prompts in the reward model's validation "
                          f"split; raise it above {counts.reward_val_needs:.3f} or add prompts")
    if counts.heldout < FEW_HELDOUT:
        log.warning("%s: data.heldout_fraction %s holds out %d of %s: evaluation's intervals will "
                    "be wide", source, data.heldout_fraction, counts.heldout, mine)
    return counts
