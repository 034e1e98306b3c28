"""The constitution: its principles, the one sampled per comparison, and the question a judge reads.

Follows the RLAIF phase of Bai et al. 2022 ("Constitutional AI: Harmlessness from AI Feedback",
§4.1): each comparison is judged under one principle sampled from the constitution, phrased as a
multiple-choice question over the two responses."""
from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import yaml

from prefpipe.errors import ConfigError
from prefpipe.label.types import Comparison, Principle
from prefpipe.seeds import pair_rng

BUILTIN = Path(__file__).with_name("constitution.yaml")
ANSWER_CUE = "Answer with a single letter: A or B."


class ConstitutionError(ConfigError):
    """A malformed constitution file; the message names the file and the entry."""


def load_constitution(path: str | Path | None = None) -> list[Principle]:
    """Principles of the YAML file at `path` ('' or None = the built-in constitution).

    The file is a list of mappings with exactly the keys `name` and `question` (non-empty strings);
    names are unique."""
    source = Path(path) if path else BUILTIN
    if not source.exists():
        raise ConstitutionError(f"{source}: constitution file not found (set critic.constitution to "
                                "a YAML file, or '' for the built-in one)")
    try:
        raw = yaml.safe_load(source.read_text())
    except yaml.YAMLError as err:
        raise ConstitutionError(f"{source}: not valid YAML: {err}") from err
    if not isinstance(raw, list) or not raw:
        raise ConstitutionError(f"{source}: must be a non-empty list of {{name, question}} entries, "
                                f"got {type(raw).__name__}")
    principles, seen = [], set()
    for index, entry in enumerate(raw):
        where = f"{source}: entry {index}"
        if not isinstance(entry, dict):
            raise ConstitutionError(f"{where}: must be a mapping with keys name and question, got "
                                    f"{type(entry).__name__} {entry!r}")
        unknown = sorted(set(entry) - {"name", "question"})
        if unknown:
            raise ConstitutionError(f"{where}: unknown key '{unknown[0]}' (known keys: name, question)")
        for key in ("name", "question"):
            value = entry.get(key)
            if not isinstance(value, str) or not value.strip():
                raise ConstitutionError(f"{where}: '{key}' must be a non-empty string, got {value!r}")
        name = entry["name"].strip()
        if name in seen:
            raise ConstitutionError(f"{where}: duplicate principle name '{name}'")
        seen.add(name)
        principles.append(Principle(name, entry["question"].strip()))
    return principles


def sample_principle(constitution: Sequence[Principle], seed: int, pair_id: str) -> Principle:
    """The principle a pair is judged under: a deterministic draw from (seed, pair_id)."""
    if not constitution:
        raise ValueError("the constitution has no principles; give at least one")
    return pair_rng(seed, pair_id, "principle").choice(list(constitution))


def render_question(comparison: Comparison) -> str:
    """The multiple-choice prompt of Bai et al. 2022 (§4.1) for a model judge, ending in ANSWER_CUE.

    A response that never finished (cut off at the length limit) is flagged to the judge."""
    notes = [f"Note: response ({letter}) was cut off before it finished."
             for letter, finished in (("A", comparison.first_finished), ("B", comparison.second_finished))
             if not finished]
    lines = ["Consider the following conversation between a human and an assistant:", "",
             f"Human: {comparison.prompt}", "", comparison.principle.question, "Options:",
             f"(A) {comparison.first}", f"(B) {comparison.second}", "", *notes, ANSWER_CUE]
    return "\n".join(lines)
