"""Local LM judge: a tiny random-init GPT-2 saved to disk; P(first) must equal the softmax over the
answer-letter logits computed here by hand from the model's own forward pass."""
from __future__ import annotations

import pytest
import torch
from transformers import GPT2Config, GPT2LMHeadModel

from prefpipe.label.critic.lm_judge import LocalLMJudge, answer_token_ids, judge_prompt
from prefpipe.label.types import Comparison, Principle
from prefpipe.models.io import save_model
from prefpipe.world.tokenizer import train_tokenizer

HONEST = Principle("honest", "Which response is more honest?")
COMPARISONS = [Comparison("What is 2 + 2?", "4.", "It is 5, I think.", HONEST),
               Comparison("Why is the sky blue?", "Scattering.", "Because.", HONEST, second_finished=False),
               Comparison("Hi", "Hello there, how can I help you today with anything?", "Hey.", HONEST)]


def save_tiny_lm(path, texts: list[str], positions: int = 512) -> None:
    tokenizer = train_tokenizer(texts, 300)
    torch.manual_seed(0)
    config = GPT2Config(vocab_size=len(tokenizer), n_positions=positions, n_embd=32, n_layer=2, n_head=2,
                        bos_token_id=tokenizer.eos_token_id, eos_token_id=tokenizer.eos_token_id,
                        pad_token_id=tokenizer.pad_token_id)
    save_model(GPT2LMHeadModel(config), tokenizer, path)


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    path = tmp_path_factory.mktemp("tiny-judge")
    texts = ["The answer is: A", "The answer is: B"] * 200 + [judge_prompt(c) for c in COMPARISONS] * 5
    save_tiny_lm(path, texts)
    return path


def by_hand(judge: LocalLMJudge, comparison: Comparison, first: str, second: str, keep: int | None = None):
    tokenizer, model = judge.tokenizer, judge.model
    ids = tokenizer.encode(judge_prompt(comparison), add_special_tokens=False)
    ids = ids[-keep:] if keep else ids
    with torch.no_grad():
        logits = model(torch.tensor([ids])).logits[0, -1]  # (V,) next-token logits
    id_a, = tokenizer.encode(first, add_special_tokens=False)
    id_b, = tokenizer.encode(second, add_special_tokens=False)
    return (logits[id_a].exp() / (logits[id_a].exp() + logits[id_b].exp())).item()


def test_p_first_is_the_softmax_of_the_spaced_letter_logits(model_dir):
    judge = LocalLMJudge.from_path(model_dir, device="cpu")
    judge.batch_size = 2  # rows of different lengths share a right-padded batch
    assert judge.name == f"local:{model_dir.name}"
    assert len(judge.tokenizer.encode(" A", add_special_tokens=False)) == 1  # the setup this test is about
    judgments = judge.judge_many(COMPARISONS)
    expected = [by_hand(judge, c, " A", " B") for c in COMPARISONS]
    torch.testing.assert_close([j.p_first for j in judgments], expected, rtol=1e-5, atol=1e-6)
    assert len({round(p, 6) for p in expected}) == 3  # the prompts do move the random model
    assert judgments[0].rationale.startswith("log P(A)=")


def test_long_prompts_keep_their_last_max_length_tokens(model_dir):
    judge = LocalLMJudge.from_path(model_dir, max_length=12, device="cpu")
    judgments = judge.judge_many(COMPARISONS)
    expected = [by_hand(judge, c, " A", " B", keep=12) for c in COMPARISONS]
    torch.testing.assert_close([j.p_first for j in judgments], expected, rtol=1e-5, atol=1e-6)


def test_max_length_beyond_the_models_positions_is_lowered_with_a_warning(tmp_path, caplog):
    # The default label.critic.local.max_length (1024) on a model of 16 positions: an IndexError
    # in the position embedding before; now the judge reads the last 16 tokens and says so.
    texts = ["The answer is: A", "The answer is: B"] * 200 + [judge_prompt(c) for c in COMPARISONS] * 5
    save_tiny_lm(tmp_path, texts, positions=16)
    with caplog.at_level("WARNING", logger="prefpipe"):
        judge = LocalLMJudge.from_path(tmp_path, max_length=1024, device="cpu")
    assert judge.max_length == 16
    assert "label.critic.local.max_length 1024" in caplog.text and "n_positions: 16" in caplog.text
    assert all(len(judge.tokenizer.encode(judge_prompt(c))) > 16 for c in COMPARISONS)
    judgments = judge.judge_many(COMPARISONS)
    expected = [by_hand(judge, c, " A", " B", keep=16) for c in COMPARISONS]
    torch.testing.assert_close([j.p_first for j in judgments], expected, rtol=1e-5, atol=1e-6)


def test_falls_back_to_bare_letters_when_spaced_ones_are_not_single_tokens(tmp_path):
    save_tiny_lm(tmp_path, ["hello world the sky is blue"] * 50)
    judge = LocalLMJudge.from_path(tmp_path, device="cpu")
    assert len(judge.tokenizer.encode(" A", add_special_tokens=False)) == 2
    assert (judge.id_a, judge.id_b) == answer_token_ids(judge.tokenizer) == (
        judge.tokenizer.convert_tokens_to_ids("A"), judge.tokenizer.convert_tokens_to_ids("B"))
    judgment, = judge.judge_many(COMPARISONS[:1])
    assert judgment.p_first == pytest.approx(by_hand(judge, COMPARISONS[0], "A", "B"), rel=1e-5)


def test_a_missing_model_folder_names_the_knob(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"critic.local.model: .*nothing-here does not exist"):
        LocalLMJudge.from_path(tmp_path / "nothing-here")


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_gives_the_cpu_answers(model_dir):
    on_cpu = LocalLMJudge.from_path(model_dir, device="cpu").judge_many(COMPARISONS)
    on_gpu = LocalLMJudge.from_path(model_dir, device="cuda").judge_many(COMPARISONS)
    torch.testing.assert_close([j.p_first for j in on_gpu], [j.p_first for j in on_cpu], rtol=1e-3, atol=1e-4)
