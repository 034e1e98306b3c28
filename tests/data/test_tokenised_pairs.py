"""The trainers' Arrow datasets: the same token ids and batches as the per-row encoders, any source
(dicts, Arrow tables, record batches, a Parquet file through a selection), the file gone on close; and
the reward and DPO trainers' losses equal to those of the per-row Python-list path."""
from __future__ import annotations

import copy

import pyarrow as pa
import pytest
import torch

from prefpipe.data.tokenised_pairs import closing_built, parquet_rows, tokenise_pairs, tokenise_parquet
from prefpipe.models.formatting import apply_prompt_format, collate, encode_prompt, encode_response
from prefpipe.train import dpo, reward
from tests.train import tiny

CHAT = "{% for m in messages %}<|user|>{{ m['content'] }}{% endfor %}<|assistant|>"


@pytest.fixture(scope="module")
def tok():
    return tiny.tokenizer()


def formatted(tok, prompt_format: str, template: str | None = None):
    fresh = copy.deepcopy(tok)
    fresh.chat_template = template
    return apply_prompt_format(fresh, prompt_format)


def sample_pairs(n: int = 40) -> list[dict]:
    """tiny's pairs with unfinished responses, a repeated prompt and ragged whitespace."""
    rows = tiny.pairs(n)
    for i, row in enumerate(rows):
        row["chosen_finished"] = i % 3 != 0
        row["rejected_finished"] = i % 4 != 1
        if i % 5 == 0:
            row["chosen"] = "  " + row["chosen"] + " \n"
    rows[7]["prompt"] = rows[3]["prompt"]
    del rows[2]["chosen_finished"]  # absent: finished, as encode_response's default
    return rows


def per_row(tok, pairs: list[dict]) -> tuple[list, list, list]:
    """The ids as the trainers encoded them before: one tokenizer call per text."""
    return ([encode_prompt(tok, p["prompt"]) for p in pairs],
            [encode_response(tok, p["chosen"], p.get("chosen_finished", True)) for p in pairs],
            [encode_response(tok, p["rejected"], p.get("rejected_finished", True)) for p in pairs])


@pytest.mark.parametrize("prompt_format, template", [("plain", None), ("chat_template", CHAT),
                                                     ("raw", None), ("auto", CHAT)])
def test_ids_equal_the_per_row_encoders(tok, prompt_format, template):
    tok = formatted(tok, prompt_format, template)
    pairs = sample_pairs()
    with tokenise_pairs(tok, pairs, chunk_rows=16) as data:  # several record batches
        assert len(data) == len(pairs)
        assert data.ids(range(len(pairs))) == per_row(tok, pairs)
    prompts = per_row(tok, pairs)[0]
    if template:
        assert tok.decode(prompts[0]).startswith("<|user|>") == (prompt_format != "raw")


def test_a_batch_is_the_collated_chosen_then_rejected_rows(tok):
    pairs = sample_pairs()
    prompts, chosen, rejected = per_row(tok, pairs)
    idx = [39, 0, 17, 3, 7]
    with tokenise_pairs(tok, pairs, chunk_rows=8) as data:
        got = data.batch(tok, idx, 12)  # short enough to cut prompts and responses
    want = collate(tok, [prompts[i] for i in idx] * 2, [chosen[i] for i in idx] + [rejected[i] for i in idx],
                   12)
    for name in ("input_ids", "attention_mask", "response_mask"):
        assert torch.equal(getattr(got, name), getattr(want, name)), name


def test_arrow_tables_record_batches_and_iterables_give_the_same_file(tok):
    pairs = sample_pairs()
    pairs[2]["chosen_finished"] = True  # Arrow columns need every key
    table = pa.Table.from_pylist(pairs)
    want = per_row(tok, pairs)
    for source in (table, table.to_batches(max_chunksize=9), iter(table.to_batches(max_chunksize=9)),
                   [pairs[:10], pairs[10:]]):
        with tokenise_pairs(tok, source, chunk_rows=7) as data:
            assert data.ids(range(len(pairs))) == want
            assert data.confidences().tolist() == [p["confidence"] for p in pairs]


def test_a_parquet_file_is_read_a_batch_at_a_time_through_the_stages_selection(tok, tmp_path):
    import pyarrow.parquet as pq

    pairs = sample_pairs()
    pairs[2]["chosen_finished"] = True
    path = tmp_path / "preferences.parquet"
    pq.write_table(pa.Table.from_pylist(pairs), path)
    seen = []

    def keep(rows):
        seen.append(len(rows))
        return [row for row in rows if row["confidence"] > 0.5]

    kept = [p for p in pairs if p["confidence"] > 0.5]
    with tokenise_parquet(tok, path, keep, chunk_rows=8) as data:
        assert data.ids(range(len(kept))) == per_row(tok, kept)
    assert seen == [8] * 5 and 0 < len(kept) < len(pairs)


def test_parquet_rows_reads_the_columns_asked_a_batch_at_a_time_and_a_missing_file_at_once(tmp_path):
    import pyarrow.parquet as pq

    pairs = tiny.pairs(20)
    path = tmp_path / "preferences.parquet"
    pq.write_table(pa.Table.from_pylist(pairs), path)
    parts = list(parquet_rows(path, columns=["prompt_id"], chunk_rows=8))
    assert [len(part) for part in parts] == [8, 8, 4]
    assert [row for part in parts for row in part] == [{"prompt_id": p["prompt_id"]} for p in pairs]
    assert [row for part in parquet_rows(path, lambda rows: rows[:1], chunk_rows=8) for row in part] == \
        [pairs[0], pairs[8], pairs[16]]
    with pytest.raises(FileNotFoundError, match="nothing.parquet: missing; run the stage that writes it"):
        parquet_rows(tmp_path / "nothing.parquet")  # before any batch is asked for
    with pytest.raises(FileNotFoundError, match="missing"):
        tokenise_parquet(None, tmp_path / "nothing.parquet", workdir=tmp_path)
    assert list(tmp_path.iterdir()) == [path]  # no temp folder left behind


def test_missing_confidence_and_finished_columns_take_the_defaults(tok):
    pairs = [{"prompt": p["prompt"], "chosen": p["chosen"], "rejected": p["rejected"]}
             for p in tiny.pairs(5)]
    with tokenise_pairs(tok, pa.Table.from_pylist(pairs)) as data:
        assert data.confidences().tolist() == [1.0] * 5
        assert all(ids[-1] == tok.eos_token_id for ids in data.ids(range(5))[1])


def test_rows_are_read_from_the_file_and_close_removes_it(tok, tmp_path):
    import os

    pairs = sample_pairs()
    data = tokenise_pairs(tok, pairs, workdir=tmp_path, chunk_rows=8)
    fd = data._fd
    assert data.path.parent.parent == tmp_path and data.path.exists()
    assert data.ids([39, 0, 39]) == tuple([rows[39], rows[0], rows[39]] for rows in per_row(tok, pairs))
    assert data.ids([]) == ([], [], [])
    with pytest.raises(IndexError, match="out of range 0..39"):
        data.ids([40])
    data.close()
    assert not data.path.parent.exists() and list(tmp_path.iterdir()) == []
    with pytest.raises(OSError):
        os.fstat(fd)  # closed with the file


def test_closing_built_keeps_the_callers_own_dataset(tok):
    with tokenise_pairs(tok, tiny.pairs(4)) as mine:
        with closing_built(reward.encode_pairs(tok, mine), mine) as same:
            assert same is mine
        assert mine.path.exists()
        built = reward.encode_pairs(tok, tiny.pairs(4))
        with closing_built(built, tiny.pairs(4)):
            pass
        assert not built.path.exists()


# --- the trainers: the same losses as the per-row Python lists gave ------------------------------

def old_encode_pairs(tokenizer, pairs):
    return per_row(tokenizer, pairs)


def old_pair_batch(tokenizer, prompts, chosen, rejected, idx, max_length):
    p = [prompts[i] for i in idx]
    return collate(tokenizer, p + p, [chosen[i] for i in idx] + [rejected[i] for i in idx], max_length)


class OldData:
    """The per-row lists behind the TokenisedPairs interface the trainers call."""

    def __init__(self, tokenizer, pairs):
        self.lists = old_encode_pairs(tokenizer, pairs)
        self.conf = [float(p.get("confidence", 1.0)) for p in pairs]

    def __len__(self):
        return len(self.conf)

    def batch(self, tokenizer, idx, max_length):
        return old_pair_batch(tokenizer, *self.lists, idx, max_length)

    def ids(self, idx):
        return tuple([column[i] for i in idx] for column in self.lists)

    def confidences(self):
        import numpy as np

        return np.array(self.conf)

    def close(self):
        pass


def losses(history: list[dict]) -> list[float]:
    return [float(row["loss"]) for row in history]


def dpo_losses(tok, pairs, ref_c, ref_r) -> list[float]:
    return losses(dpo.train_dpo(tiny.policy_lm(tok, 3), tok, pairs, ref_c, ref_r, tiny.dpo_params(), 24, 0))


def test_reward_and_dpo_losses_equal_the_python_list_path(tok, monkeypatch):
    pairs = sample_pairs(24)
    params = tiny.reward_params(margin_scale=0.5)
    new_reward = losses(reward.train_reward_model(tiny.reward_model(tok), tok, pairs, params, 24, 0))
    ref_c, ref_r = dpo.reference_logprobs(tiny.policy_lm(tok), tok, pairs, 24)
    new_dpo = dpo_losses(tok, pairs, ref_c, ref_r)

    monkeypatch.setattr(reward, "encode_pairs", OldData)
    monkeypatch.setattr(dpo, "encode_pairs", OldData)
    old_reward = losses(reward.train_reward_model(tiny.reward_model(tok), tok, pairs, params, 24, 0))
    old_c, old_r = dpo.reference_logprobs(tiny.policy_lm(tok), tok, pairs, 24)
    old_dpo = dpo_losses(tok, pairs, old_c, old_r)
    assert len(new_reward) == 6 and len(new_dpo) == 6
    assert torch.allclose(ref_c, old_c, atol=1e-6) and torch.allclose(ref_r, old_r, atol=1e-6)
    assert new_reward == pytest.approx(old_reward, abs=1e-6)
    assert new_dpo == pytest.approx(old_dpo, abs=1e-6)


def test_one_tokenised_dataset_serves_reference_and_training(tok):
    pairs = sample_pairs(16)
    with tokenise_pairs(tok, pairs) as data:
        ref_c, ref_r = dpo.reference_logprobs(tiny.policy_lm(tok), tok, data, 24)
        shared = dpo_losses(tok, data, ref_c, ref_r)
        assert data.path.exists()  # the caller's: still open
    ref_c2, ref_r2 = dpo.reference_logprobs(tiny.policy_lm(tok), tok, pairs, 24)
    assert torch.equal(ref_c, ref_c2) and torch.equal(ref_r, ref_r2)
    assert shared == dpo_losses(tok, pairs, ref_c2, ref_r2)
