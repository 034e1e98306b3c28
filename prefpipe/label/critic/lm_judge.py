"""A judge from a local transformers causal LM: the log-probs of the answer letters.

As in Bai et al. 2022 (§4.1), the model reads the multiple-choice question ending in the cue
"The answer is:" and P(first) is the softmax over its next-token logits restricted to the two
answer tokens, " A" and " B" (or "A" and "B" when the tokenizer has no single-token " A")."""
from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

import torch

from prefpipe.config.model_refs import context_length
from prefpipe.label.critic.constitution import render_question
from prefpipe.label.types import Comparison, Judgment
from prefpipe.models.io import load_causal_lm, load_tokenizer

ANSWER_PROMPT = "\nThe answer is:"
log = logging.getLogger("prefpipe")


def judge_prompt(comparison: Comparison) -> str:
    """The plain-text prompt the local model continues (no chat template: a base-model format)."""
    return render_question(comparison) + ANSWER_PROMPT


def answer_token_ids(tokenizer) -> tuple[int, int]:
    """Ids of the single tokens " A" / " B", else "A" / "B"; error if neither pair is single tokens."""
    for first, second in ((" A", " B"), ("A", "B")):
        ids_a = tokenizer.encode(first, add_special_tokens=False)
        ids_b = tokenizer.encode(second, add_special_tokens=False)
        if len(ids_a) == 1 and len(ids_b) == 1 and ids_a != ids_b:
            return ids_a[0], ids_b[0]
    raise ValueError(f"the tokenizer {getattr(tokenizer, 'name_or_path', '')!r} has no single token for "
                     "'A' and 'B'; the local judge reads their next-token log-probs, so pick another model")


class LocalLMJudge:
    """P(first) = softmax(logits[" A"], logits[" B"])[0] at the position after the prompt.

    Prompts longer than `max_length` tokens keep their last `max_length` (the question and cue).
    A `max_length` beyond the positions the model's config declares is lowered to them, with a
    warning: the model cannot read more, and prompts are cut from the front anyway, so the judge
    works where failing would only make the user copy a number from config.json. Batches are
    right-padded, and each row is read at its own last real token, so padding never changes a
    result."""

    def __init__(self, model, tokenizer, max_length: int = 1024, batch_size: int = 8,
                 name: str = "local"):
        self.model, self.tokenizer = model.eval(), tokenizer
        self.max_length, self.batch_size, self.name = max_length, batch_size, name
        found = context_length(model.config.to_dict())
        if found and found[1] < max_length:
            log.warning("label.critic.local.max_length %d is more than the judge model reads (%s: %d "
                        "in its config.json); using %d", max_length, found[0], found[1], found[1])
            self.max_length = found[1]
        self.id_a, self.id_b = answer_token_ids(tokenizer)
        self.pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id

    @classmethod
    def from_path(cls, path: str | Path, max_length: int = 1024, device: str | None = None) -> LocalLMJudge:
        """Load the model folder at `path` (float32; on CUDA when available unless `device` says)."""
        if not Path(path).exists():
            raise FileNotFoundError(f"critic.local.model: {path} does not exist (give a local folder "
                                    "holding a transformers causal LM and its tokenizer)")
        device = device or ("cuda" if torch.cuda.is_available() else "cpu")
        model = load_causal_lm(path).to(device)
        return cls(model, load_tokenizer(path), max_length, name=f"local:{Path(path).name}")

    @torch.no_grad()
    def judge_many(self, comparisons: Sequence[Comparison]) -> list[Judgment]:
        out = []
        device = next(self.model.parameters()).device
        for start in range(0, len(comparisons), self.batch_size):
            batch = [self.tokenizer.encode(judge_prompt(c), add_special_tokens=False)[-self.max_length:]
                     for c in comparisons[start:start + self.batch_size]]
            width = max(len(ids) for ids in batch)
            input_ids = torch.full((len(batch), width), self.pad_id, dtype=torch.long)
            attention = torch.zeros((len(batch), width), dtype=torch.long)
            for row, ids in enumerate(batch):
                input_ids[row, :len(ids)] = torch.tensor(ids)
                attention[row, :len(ids)] = 1
            logits = self.model(input_ids=input_ids.to(device), attention_mask=attention.to(device)).logits
            last = torch.tensor([len(ids) - 1 for ids in batch], device=device)  # (B,) last real token
            next_logits = logits[torch.arange(len(batch), device=device), last].float()  # (B, V)
            pair = next_logits[:, [self.id_a, self.id_b]]  # (B, 2): answer-letter logits
            probs = torch.softmax(pair, dim=-1)[:, 0].tolist()
            logprobs = torch.log_softmax(pair, dim=-1).tolist()
            out += [Judgment(p, f"log P(A)={lp[0]:.3f}, log P(B)={lp[1]:.3f} (of the two letters)")
                    for p, lp in zip(probs, logprobs)]
        return out
