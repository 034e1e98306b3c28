"""One home for derived randomness: every seeded draw in prefpipe takes its seed from here.

Two shapes, both pure functions of their inputs so a resumed or re-ordered run draws the same:
- `derive_seed(seed, purpose, *indices)`: an integer seed for a numbered draw (an epoch's data
  order, an iteration's prompts). Each `SeedPurpose` fixes the arithmetic, so two purposes never
  share a stream by accident and the values match the ones earlier releases used (outputs keep
  their DVC hashes).
- `pair_rng(seed, item, salt)`: a generator for one named item (a pair, an annotator) and one
  purpose (`salt`), from a sha256 of the three, so draws never depend on visiting order.
- `split_position(seed, purpose, prompt_id)`: where a prompt falls in [0, 1) for one split; a
  prompt is on the split's side when its position is below the split's fraction. Each
  `SplitPurpose` hashes differently, so two splits are independent: the reward model's validation
  prompts are a fair share of the training prompts whatever `data.heldout_fraction` is."""
from __future__ import annotations

import hashlib
import random
from enum import Enum


class SeedPurpose(Enum):
    """value = (multiplier of the run seed, multipliers of the indices, offset)."""
    DATA_ORDER = (7919, (1,), 0)              # indices: epoch
    MINIBATCH_ORDER = (7919, (101, 1), 0)     # indices: iteration, epoch
    ROLLOUT_PROMPTS = (1_000_003, (1,), 0)    # indices: iteration
    ROLLOUT_SAMPLING = (7_000_003, (97, 1), 0)  # indices: iteration, process rank
    EVALUATION = (1, (), 1)                   # no indices: held-out prompts and sampling
    PASS_AT_K = (3, (), 2)                    # no indices: evaluate's k samples per verifiable prompt


def derive_seed(seed: int, purpose: SeedPurpose, *indices: int) -> int:
    """seed * m + Σ index_i * k_i + offset, with (m, k, offset) fixed by `purpose`."""
    seed_multiplier, index_multipliers, offset = purpose.value
    if len(indices) != len(index_multipliers):
        raise TypeError(f"{purpose.name} takes {len(index_multipliers)} indices, got {len(indices)}")
    return seed * seed_multiplier + sum(i * k for i, k in zip(indices, index_multipliers)) + offset


def pair_rng(seed: int, pair_id: str, salt: str) -> random.Random:
    """A generator for one item (a pair, an annotator...) and one purpose (`salt`)."""
    digest = hashlib.sha256(f"{seed}:{salt}:{pair_id}".encode()).digest()
    return random.Random(int.from_bytes(digest[:8], "big"))


class SplitPurpose(Enum):
    """value = the salt of the split's hash. Reward validation keeps the unsalted hash earlier
    releases used (the default run keeps its DVC hashes); every other split needs its own salt."""
    HELDOUT = "heldout"        # your prompts kept out of training, for evaluation (data.heldout_fraction)
    REWARD_VALIDATION = ""     # the reward model's validation prompts (reward.val_fraction)


def split_position(seed: int, purpose: SplitPurpose, prompt_id: str) -> float:
    """A prompt's position in [0, 1] for one split: the first 32 bits of sha256(seed:salt:id)."""
    salt = f"{purpose.value}:" if purpose.value else ""
    digest = hashlib.sha256(f"{seed}:{salt}{prompt_id}".encode()).hexdigest()[:8]
    return int(digest, 16) / 0xFFFFFFFF
