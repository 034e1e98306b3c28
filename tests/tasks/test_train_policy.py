"""The train_policy stage's DPO data path (`tasks.train_policy.run_dpo`): the round's preferences
(`rounds_kept`: `select_rounds` of each Parquet record batch) tokenised once and that one dataset
serving the reference log-probs and training, left open between them; the same reference log-probs
and bit-identical weights as the dicts path it replaced (every row loaded, selected, tokenised by
`reference_for` and again by `train_dpo`)."""
from __future__ import annotations

import dataclasses

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import torch

from prefpipe.config.schema import Params
from prefpipe.data.tokenised_pairs import tokenise_parquet
from prefpipe.rounds.history import select_rounds
from prefpipe.train import reward
from prefpipe.train.dpo import reference_for, train_dpo, variant_for
from tasks.train_policy import rounds_kept
from tests.train import tiny


@pytest.fixture(scope="module")
def tok():
    return tiny.tokenizer()


def preferences(n: int = 40) -> list[dict]:
    """tiny's pairs from rounds 1-3 and imported ones (no round)."""
    rows = tiny.pairs(n)
    for i, row in enumerate(rows):
        row.update(chosen_finished=i % 3 != 0, rejected_finished=i % 4 != 1,
                   round=None if i % 7 == 0 else 1 + i % 3)
    return rows


def test_one_tokenised_selection_gives_the_reference_and_weights_of_the_dicts_path(tok, tmp_path,
                                                                                   monkeypatch):
    rows = preferences()
    path = tmp_path / "preferences.parquet"
    pq.write_table(pa.Table.from_pylist(rows), path)
    params = Params()
    params = dataclasses.replace(params, rounds=dataclasses.replace(params.rounds, data="window", window=2))
    dpo_params = tiny.dpo_params()
    variant = variant_for(dpo_params)

    def reference():
        return tiny.policy_lm(tok)

    selected = select_rounds(rows, "window", 2, 3)
    assert 0 < len(selected) < len(rows)
    old_ref = reference_for(variant, reference, tok, selected, 24)
    old = tiny.policy_lm(tok, 3)
    old_history = train_dpo(old, tok, selected, *old_ref, dpo_params, 24, 0)

    tokenised = []
    real = reward.tokenise_pairs
    monkeypatch.setattr(reward, "tokenise_pairs", lambda *a, **k: tokenised.append(1) or real(*a, **k))
    new = tiny.policy_lm(tok, 3)
    with tokenise_parquet(tok, path, keep=rounds_kept(params, 3), chunk_rows=8) as data:  # 5 batches
        assert len(data) == len(selected)
        new_ref = reference_for(variant, reference, tok, data, 24)
        assert data.path.exists()  # not closed between the reference and training
        new_history = train_dpo(new, tok, data, *new_ref, dpo_params, 24, 0)
        assert data.path.exists()
    assert tokenised == []  # neither pass tokenised again
    assert torch.equal(new_ref[0], old_ref[0]) and torch.equal(new_ref[1], old_ref[1])
    assert [float(r["loss"]) for r in new_history] == [float(r["loss"]) for r in old_history]
    for (name, want), got in zip(old.state_dict().items(), new.state_dict().values()):
        assert torch.equal(got, want), name
