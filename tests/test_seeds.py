"""prefpipe.seeds: split positions by hand-computed sha256, and splits independent of each other."""
from __future__ import annotations

import hashlib

from prefpipe.seeds import SplitPurpose, split_position


def by_hand(text: str) -> float:
    return int(hashlib.sha256(text.encode()).hexdigest()[:8], 16) / 0xFFFFFFFF


def test_each_purpose_hashes_seed_salt_and_prompt():
    assert split_position(3, SplitPurpose.HELDOUT, "p1") == by_hand("3:heldout:p1")
    # reward validation keeps the unsalted form of earlier releases: the default run's hashes hold
    assert split_position(3, SplitPurpose.REWARD_VALIDATION, "p1") == by_hand("3:p1")


def test_positions_lie_in_the_unit_interval_and_follow_the_seed():
    positions = [split_position(0, SplitPurpose.HELDOUT, f"p{i}") for i in range(200)]
    assert all(0.0 <= p <= 1.0 for p in positions)
    assert positions != [split_position(1, SplitPurpose.HELDOUT, f"p{i}") for i in range(200)]


def test_validation_takes_its_share_of_the_training_prompts_whatever_the_heldout_fraction():
    """The issue's bug: one hash for both splits put every training prompt above 0.2, so a
    val_fraction of 0.15 found no prompt. With a salt each, 15% of training prompts validate."""
    ids = [f"prompt-{i}" for i in range(4000)]
    train = [p for p in ids if split_position(0, SplitPurpose.HELDOUT, p) >= 0.2]
    val = [p for p in train if split_position(0, SplitPurpose.REWARD_VALIDATION, p) < 0.15]
    assert 0.13 < len(val) / len(train) < 0.17
    shared_hash_val = [p for p in train if split_position(0, SplitPurpose.HELDOUT, p) < 0.15]
    assert shared_hash_val == []  # what one shared hash gave
