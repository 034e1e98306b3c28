"""Scores from a reward model (a sequence classifier with one label): for training, PPO's reward,
and evaluation alike, so evaluation needs nothing of the training package."""
from __future__ import annotations

from typing import TYPE_CHECKING

import torch

from prefpipe.models.formatting import TokenBatch, response_batches

if TYPE_CHECKING:
    from transformers import PreTrainedTokenizerBase


def scalar_rewards(model: torch.nn.Module, batch: TokenBatch) -> torch.Tensor:
    """The reward head's score at each row's last real token. -> (B,)"""
    return model(input_ids=batch.input_ids, attention_mask=batch.attention_mask).logits.squeeze(-1)


@torch.no_grad()
def score_responses(model: torch.nn.Module, tokenizer: PreTrainedTokenizerBase, prompts: list[str],
                    responses: list[str], finished: list[bool], max_length: int,
                    batch_size: int = 64) -> list[float]:
    """Reward-model scores of (prompt, response) rows, in order; puts `model` in eval mode."""
    model.eval()
    return [score for batch in response_batches(tokenizer, prompts, responses, finished, max_length,
                                                batch_size)
            for score in scalar_rewards(model, batch).float().tolist()]
