"""One home per vocabulary: the closed sets of names that config, store, CLI and code all read.

Each vocabulary is a `StrEnum`, so a member *is* its stored string (`LabelSource.CRITIC == "critic"`)
and the strings written to params.yaml, the store and the parquet files are unchanged. Other shapes
are derived from the enum, never re-typed:
- config fields: `literal(Enum)` gives the `Literal[...]` the params loader checks against;
- the store's CHECK constraints: `Enum.sql_in()`;
- CLI `choices=`: `Enum.values()`.

Where a new name goes:
- a new labeler: `Labeler` (and `LabelSource`: a labeler's labels carry its name as their source),
  then a step in `prefpipe.label.route.LabelRouter`;
- a new label source without a labeler (e.g. imported crowd labels): `LabelSource` only;
- a new interchange format: `Format`, then its parser in `prefpipe.data.interchange.formats`;
- a new DPO variant: `DPOVariant`, then its object in `prefpipe.losses.dpo_variants.DPO_VARIANTS`;
- a new critic judge: `JudgeBackend`, then its builder in `prefpipe.label.critic.make_judge`.

The member order is the order errors, help texts and the store's CHECKs list them in.
Importing this module costs nothing (no torch, no duckdb): config validation reads it."""
from __future__ import annotations

import typing
from enum import StrEnum
from typing import Any


class Vocabulary(StrEnum):
    """A closed set of names whose members are their own stored strings."""

    @classmethod
    def values(cls) -> tuple[str, ...]:
        """The plain strings, in declaration order (for `choices=`, messages and membership tests)."""
        return tuple(member.value for member in cls)

    @classmethod
    def sql_in(cls) -> str:
        """The list of a CHECK (... IN (...)) constraint: `'a', 'b', 'tie'` (values are plain words)."""
        return ", ".join(f"'{value}'" for value in cls.values())


def literal(vocabulary: type[Vocabulary]) -> Any:
    """`Literal["x", "y", ...]` of a vocabulary's values, for a params field the loader checks.

    The loader keeps the value the user wrote (a plain str), so params stay plain YAML."""
    return typing.Literal[vocabulary.values()]


class Labeler(Vocabulary):
    """Who a category's pairs are routed to (`label.routing`); listed in the router's order of work."""
    VERIFIER = "verifier"    # reference answers and code tests (the world's, or your `Reference`s)
    CRITIC = "critic"        # the constitutional AI critic (prefpipe.label.critic)
    HUMAN = "human"          # annotation queues (`prefpipe label serve`)
    SIMULATED = "simulated"  # simulated annotators on the embedded world's gold scores


class Reference(Vocabulary):
    """What one of your own prompts may give the verifier (`data.answer_column`, `data.tests_column`):
    the key it has in the prompt row's `meta`, and so the check it gets (`prefpipe.verify.verifiers`)."""
    ANSWER = "answer"  # the reference final answer: sympy-equivalent to the response's final answer
    TESTS = "tests"    # assert statements, run against the response's code in the sandbox


class LabelSource(Vocabulary):
    """`labels.source`: who gave a label. Every `Labeler` is a source (its labels carry its name);
    imported preferences are `import` unless `label.imports[].source` / `label import --source`
    names another. Only `human` labels that answer an annotator's task count as people's answers
    (agreement, the admin page, `label status`)."""
    SIMULATED = "simulated"
    VERIFIER = "verifier"
    HUMAN = "human"
    CRITIC = "critic"
    IMPORT = "import"  # preferences read from a file (`prefpipe label import`), no labeler of ours


class Choice(Vocabulary):
    """`labels.choice`: the verdict, always relative to the pair's a/b (not the order shown)."""
    A = "a"
    B = "b"
    TIE = "tie"
    BOTH_BAD = "both_bad"

    @classmethod
    def decisive(cls) -> tuple[str, str]:
        """The choices that pick a side and so make a (chosen, rejected) preference."""
        return (cls.A.value, cls.B.value)


class Format(Vocabulary):
    """Preference interchange formats (`label import/export --format`, `label.imports[].format`)."""
    TRL = "trl"                      # {prompt, chosen, rejected}, plain or conversational
    HH = "hh"                        # Anthropic HH-RLHF: {chosen, rejected} full transcripts
    ULTRAFEEDBACK = "ultrafeedback"  # {instruction, completions[...]} or the binarised form


class DPOVariant(Vocabulary):
    """`policy.dpo.loss`: the member of the DPO family; its properties live on its loss object
    (`prefpipe.losses.dpo_variants.DPO_VARIANTS`), which covers every name here."""
    SIGMOID = "sigmoid"  # DPO; cDPO with label_smoothing
    ROBUST = "robust"    # rDPO
    IPO = "ipo"
    HINGE = "hinge"      # SLiC-HF
    SIMPO = "simpo"      # reference-free, length-normalised


class JudgeBackend(Vocabulary):
    """`label.critic.judge`: the critic's judge backend."""
    RULE = "rule"    # built-in, reads the embedded world's facts
    HTTP = "http"    # any OpenAI-compatible server
    LOCAL = "local"  # a transformers causal LM from a folder


class PromptFormat(Vocabulary):
    """`model.prompt_format`: how a prompt becomes the model's input text
    (`prefpipe.models.formatting.apply_prompt_format`)."""
    AUTO = "auto"                    # the tokenizer's chat template if it has one, else plain
    CHAT_TEMPLATE = "chat_template"  # the tokenizer's chat template (an error if it has none)
    PLAIN = "plain"                  # "User: {prompt}\nAssistant:"
    RAW = "raw"                      # the prompt text as given: nothing added


class OptimizerName(Vocabulary):
    """`*.optim.optimizer`: the torch optimizer of a trainer (`prefpipe.train.common.make_optimizer`)."""
    ADAMW = "adamw"
    SGD = "sgd"


class LRSchedule(Vocabulary):
    """`*.optim.schedule`: the learning rate after the linear warmup."""
    COSINE = "cosine"      # cosine decay to min_lr_ratio x lr
    LINEAR = "linear"      # linear decay to min_lr_ratio x lr
    CONSTANT = "constant"  # stays at lr


class RoundData(Vocabulary):
    """`rounds.data`: which rounds' preferences the policy trains on (the reward model: all of them)."""
    ALL = "all"        # every round's pairs so far
    LATEST = "latest"  # this round's pairs only
    WINDOW = "window"  # the last `rounds.window` rounds' pairs


class RoundModel(Vocabulary):
    """`rounds.init` / `rounds.reference`: which model a round's policy starts from, or holds frozen as
    the reference of DPO/PPO/GRPO and of the KL penalty."""
    SFT = "sft"            # the SFT model: the sft stage's, or your own model.policy
    PREVIOUS = "previous"  # models/generator: the last published version (round 1: SFT)
