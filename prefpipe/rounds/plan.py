"""Whether a round is due, and which prompts it samples.

A round is due when there is something to learn from: the first round; train prompts no earlier
round knew (the prompt source grew); human labels that arrived since the last round; or fewer
finished rounds than `rounds.iterations` (on-policy rounds over the same prompts, as in iterative
DPO). A round left running (killed, or a stage failed) is resumed under its own number."""
from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass, field

RUNNING = "running"


@dataclass(frozen=True)
class LabelsSeen:
    """The human labels in the store: how many, and a digest of them (store.registry)."""
    count: int
    digest: str


@dataclass(frozen=True)
class RoundDecision:
    due: bool
    round: int               # the round to run (due), or the last one (not due)
    reason: str              # one line: why it runs, or why there is nothing to do
    resumed: bool = False    # the round was left running: its recorded inputs are reused
    new_prompt_ids: tuple[str, ...] = field(default=())
    new_labels: int = 0


def decide_round(train_prompt_ids: Sequence[str], known_prompt_ids: set[str], last_round: dict | None,
                 finished_rounds: int, labels: LabelsSeen, iterations: int) -> RoundDecision:
    """The decision of the round stage, from the registry's record (`last_round`: its row, with
    `labels_count` and `labels_digest` seen when it started) and what the store holds now."""
    new_ids = tuple(dict.fromkeys(p for p in train_prompt_ids if p not in known_prompt_ids))
    if last_round is None:
        return RoundDecision(True, 1, f"round 1: {len(new_ids)} prompts, sampled from the SFT model",
                             new_prompt_ids=new_ids, new_labels=labels.count)
    number = int(last_round["round"])
    if last_round["status"] == RUNNING:
        return RoundDecision(True, number, f"round {number} was left unfinished: resuming it",
                             resumed=True)
    new_labels = max(labels.count - int(last_round.get("labels_count") or 0), 0)
    labels_changed = labels.digest != last_round.get("labels_digest")
    reasons = []
    if new_ids:
        reasons.append(f"{len(new_ids)} new prompts")
    if labels_changed:
        reasons.append(f"{new_labels or 'changed'} new human labels")
    if finished_rounds < iterations:
        reasons.append(f"iteration {finished_rounds + 1} of rounds.iterations {iterations}")
    if not reasons:
        return RoundDecision(False, number, f"nothing new since round {number}: no new prompts, no new "
                             f"human labels, {finished_rounds} of rounds.iterations {iterations} rounds "
                             "done")
    return RoundDecision(True, number + 1, f"round {number + 1}: " + ", ".join(reasons),
                         new_prompt_ids=new_ids if new_ids else (), new_labels=new_labels)


def round_prompts(train_rows: list[dict], new_prompt_ids: Sequence[str], replay_share: float,
                  seed: int, round_number: int) -> list[dict]:
    """The prompt rows a round samples from, in the prompt source's order. With new prompts: those,
    plus old ones drawn at random so that they make `replay_share` of the result. Without new
    prompts (an on-policy iteration, or new labels only): every training prompt."""
    if not new_prompt_ids:
        return list(train_rows)
    new = set(new_prompt_ids)
    old = [r for r in train_rows if r["prompt_id"] not in new]
    replay = round(len(new) * replay_share / (1.0 - replay_share)) if replay_share > 0 else 0
    chosen = {r["prompt_id"] for r in random.Random(round_seed(seed, round_number)).sample(
        old, min(replay, len(old)))}
    return [r for r in train_rows if r["prompt_id"] in new or r["prompt_id"] in chosen]


def round_seed(seed: int, round_number: int) -> int:
    """The seed of a round's sampling: `seed` itself in round 1 (a single run is what it was before
    rounds), a different one in every later round."""
    return seed + 1_000_003 * (round_number - 1)
