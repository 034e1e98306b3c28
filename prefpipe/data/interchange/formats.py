"""The preference schemas we read and write, one parser and one renderer each.

A parser turns one record (a dict: a JSON line, a Parquet or `datasets` row) into a `Preference`
(prompt, chosen, rejected), returns None for a row the format's rule skips (UltraFeedback ties), or
raises `BadRow` naming the problem; the importer adds the file and the row. A renderer turns a
`Preference` into the format's row. The schemas:

- `trl`: TRL's preference format. Standard: `prompt`, `chosen`, `rejected` strings. Conversational:
  lists of {role, content} messages; with an explicit `prompt` the completions are `chosen` and
  `rejected`, without one the prompt is the messages `chosen` and `rejected` share (TRL's
  "implicit prompt"). A completion must be exactly one assistant message.
- `hh`: Anthropic HH-RLHF (Bai et al. 2022): `chosen`/`rejected` are full transcripts
  "\\n\\nHuman: ...\\n\\nAssistant: ...". The prompt is everything before the last "\\n\\nAssistant:"
  (the same in both, else the row is bad); the response is what follows it, less one space. A
  single-turn prompt is stored as the human's text alone; a multi-turn one as its transcript.
- `ultrafeedback`: UltraFeedback rows (Cui et al. 2023), binarised as for Zephyr (Tunstall et al.
  2023, `ultrafeedback_binarized`): see `binarise`. The already-binarised form (`prompt`, `chosen`
  and `rejected` message lists, optional `score_chosen`/`score_rejected`) is read as it stands.

Multi-turn prompts are kept as HH-style transcripts, the one string form the store has for them.
Long because the three schemas share one set of checks (a parser meets any JSON value: every
oddity it can hold is a `BadRow`, never another exception; `tests/.../test_properties.py`).
"""
from __future__ import annotations

import hashlib
import math
import random
from dataclasses import dataclass

from prefpipe.errors import DataError
from prefpipe.vocab import Format

FORMATS = Format.values()
HUMAN, ASSISTANT = "\n\nHuman:", "\n\nAssistant:"
ROLE_NAMES = {"user": "Human", "assistant": "Assistant", "system": "System"}
SCORE_KEYS = ("overall_score", "fine-grained_score", "fine_grained_score", "ratings")


class BadRow(DataError):
    """A problem with one record, not yet placed; the importer adds the file and row to the message."""


@dataclass(frozen=True)
class Preference:
    """One preference as the store keeps it: the prompt text and the preferred response first."""
    prompt: str
    chosen: str
    rejected: str


# --- shared checks -----------------------------------------------------------------------------

def _column(record: dict, column: str) -> object:
    if column not in record:
        raise BadRow(f"missing column '{column}' (columns here: {', '.join(map(str, record)) or 'none'})")
    return record[column]


def _text(record: dict, column: str) -> str:
    return _nonempty(_column(record, column), f"column '{column}'")


def _nonempty(value: object, what: str) -> str:
    if not isinstance(value, str):
        raise BadRow(f"{what} must be text, got {type(value).__name__} {_short(value)}")
    if not value.strip():
        raise BadRow(f"{what} is empty")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as err:  # JSON's "\ud800" escapes decode to text no file can hold
        raise BadRow(f"{what} holds an unpaired surrogate at character {err.start + 1}") from None
    return value


def _short(value: object) -> str:
    try:
        text = repr(value)
    except (ValueError, RecursionError):  # an int of over 4300 digits; a deeply nested value
        return f"<a {type(value).__name__}>"
    return text if len(text) <= 60 else text[:57] + "..."


def _distinct(pref: Preference) -> Preference:
    if pref.chosen == pref.rejected:
        raise BadRow("chosen and rejected are the same response; a preference needs two")
    return pref


# --- conversational (message lists) ------------------------------------------------------------

def _messages(value: object, what: str) -> list[dict]:
    if not isinstance(value, list | tuple):
        raise BadRow(f"{what} must be text or a list of {{role, content}} messages, got "
                     f"{type(value).__name__} {_short(value)}")
    out = []
    for i, message in enumerate(value):
        if not isinstance(message, dict) or "role" not in message or "content" not in message:
            raise BadRow(f"{what}[{i}] must be a {{role, content}} message, got {_short(message)}")
        role = _nonempty(message["role"], f"{what}[{i}].role")
        out.append({"role": role, "content": _nonempty(message["content"], f"{what}[{i}].content")})
    return out


def render_transcript(messages: list[dict]) -> str:
    """A prompt's messages as one string: a lone user message is its text, else an HH transcript."""
    if len(messages) == 1 and messages[0]["role"] == "user":
        return messages[0]["content"]
    return "".join(f"\n\n{ROLE_NAMES.get(m['role'], m['role'].title())}: {m['content']}"
                   for m in messages)


def _completion(messages: list[dict], what: str) -> str:
    if len(messages) != 1 or messages[0]["role"] != "assistant":
        roles = [m["role"] for m in messages]
        raise BadRow(f"{what} must end in exactly one assistant message after the prompt, got roles "
                     f"{roles}")
    return messages[0]["content"]


def _conversation(prompt: object, chosen: object, rejected: object) -> Preference:
    """Explicit prompt (text or messages) plus completions, or an implicit shared-prefix prompt."""
    chosen_msgs, rejected_msgs = _messages(chosen, "chosen"), _messages(rejected, "rejected")
    if isinstance(prompt, list | tuple):
        if not prompt:
            raise BadRow("column 'prompt' is an empty message list")
        prompt_text = render_transcript(_messages(prompt, "prompt"))
        return _distinct(Preference(prompt_text, _completion(chosen_msgs, "chosen"),
                                    _completion(rejected_msgs, "rejected")))
    shared = 0
    while (shared < min(len(chosen_msgs), len(rejected_msgs))
           and chosen_msgs[shared] == rejected_msgs[shared]):
        shared += 1
    if chosen_msgs == rejected_msgs:
        raise BadRow("chosen and rejected are the same conversation; a preference needs two")
    if shared == 0 and prompt is None:
        raise BadRow("chosen and rejected share no prompt messages; give a 'prompt' column or "
                     "start both conversations with the same prompt")
    prompt_text = (_nonempty(prompt, "column 'prompt'") if prompt is not None
                   else render_transcript(chosen_msgs[:shared]))
    return _distinct(Preference(prompt_text, _completion(chosen_msgs[shared:], "chosen"),
                                _completion(rejected_msgs[shared:], "rejected")))


def _as_messages(prompt: str, response: str) -> list[dict]:
    return [{"role": "user", "content": prompt}, {"role": "assistant", "content": response}]


# --- trl ---------------------------------------------------------------------------------------

def parse_trl(record: dict, seed: int = 0) -> Preference:
    """TRL standard (strings) or conversational (message lists) preference row."""
    chosen, rejected = _column(record, "chosen"), _column(record, "rejected")
    if isinstance(chosen, list | tuple) or isinstance(rejected, list | tuple):
        return _conversation(record.get("prompt"), chosen, rejected)
    return _distinct(Preference(_text(record, "prompt"), _text(record, "chosen"),
                                _text(record, "rejected")))


def render_trl(pref: Preference) -> dict:
    return {"prompt": pref.prompt, "chosen": pref.chosen, "rejected": pref.rejected}


# --- hh ----------------------------------------------------------------------------------------

def _split_transcript(transcript: str, column: str) -> tuple[str, str]:
    cut = transcript.rfind(ASSISTANT)
    if cut < 0:
        raise BadRow(f"column '{column}' is not an HH transcript: no '\\n\\nAssistant:' turn")
    response = transcript[cut + len(ASSISTANT):]
    response = response[1:] if response.startswith(" ") else response
    return transcript[:cut], _nonempty(response, f"the last Assistant turn of column '{column}'")


def _hh_prompt(prefix: str) -> str:
    """'\\n\\nHuman: X' alone becomes X; a multi-turn prefix stays a transcript."""
    if prefix.startswith(HUMAN) and HUMAN not in prefix[1:] and ASSISTANT not in prefix:
        text = prefix[len(HUMAN):]
        return _nonempty(text[1:] if text.startswith(" ") else text, "the Human turn")
    return _nonempty(prefix, "the transcript before the last Assistant turn")


def parse_hh(record: dict, seed: int = 0) -> Preference:
    """An HH-RLHF row: two transcripts that share everything up to the last Assistant turn."""
    prefix_c, chosen = _split_transcript(_text(record, "chosen"), "chosen")
    prefix_r, rejected = _split_transcript(_text(record, "rejected"), "rejected")
    if prefix_c != prefix_r:
        raise BadRow("HH prompt mismatch: 'chosen' and 'rejected' differ before their last "
                     "'\\n\\nAssistant:' turn; both must continue the same conversation")
    return _distinct(Preference(_hh_prompt(prefix_c), chosen, rejected))


def render_hh(pref: Preference) -> dict:
    prefix = pref.prompt if pref.prompt.startswith("\n\n") else f"{HUMAN} {pref.prompt}"
    return {"chosen": f"{prefix}{ASSISTANT} {pref.chosen}",
            "rejected": f"{prefix}{ASSISTANT} {pref.rejected}"}


# --- ultrafeedback -----------------------------------------------------------------------------

def _number(value: object, what: str) -> float | None:
    """A score as a float; None (or 'N/A') means unscored; anything else non-numeric is bad."""
    if value is None or value == "N/A":
        return None
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise BadRow(f"{what} must be a number, got {type(value).__name__} {_short(value)}")
    try:
        number = float(value)
    except (ValueError, OverflowError):  # text that is no number; an int beyond float's range
        raise BadRow(f"{what} must be a number, got {_short(value)}") from None
    if math.isnan(number):
        raise BadRow(f"{what} must be a number, got NaN")
    return number


def _mean(values: list[float | None]) -> float | None:
    known = [v for v in values if v is not None]
    return sum(known) / len(known) if known else None


def completion_score(completion: dict, what: str) -> float | None:
    """`overall_score`, else `fine-grained_score`, else the mean of `ratings` (a list or an
    {aspect: rating} dict), else the mean of `annotations[aspect].Rating`; None if unscored."""
    for key in SCORE_KEYS:
        if key not in completion:
            continue
        value = completion[key]
        if isinstance(value, dict):
            value = list(value.values())
        if isinstance(value, list | tuple):
            return _mean([_number(v, f"{what}.{key}[{i}]") for i, v in enumerate(value)])
        return _number(value, f"{what}.{key}")
    annotations = completion.get("annotations")
    if isinstance(annotations, dict):
        return _mean([_number(a.get("Rating") if isinstance(a, dict) else a, f"{what}.annotations.{k}")
                      for k, a in annotations.items()])
    return None


def binarise(prompt: str, responses: list[str], scores: list[float | None], seed: int) -> Preference | None:
    """UltraFeedback -> one pair, as for Zephyr (Tunstall et al. 2023, sec. 3): chosen = the
    highest-scored completion, rejected = one of the others drawn at random (not the worst).

    Ties are skipped: the draw is among completions scored strictly lower than the best (Argilla's
    cleaned binarisation), and a row whose best score is shared, or with no lower completion, or
    fewer than two scored completions gives None. Unscored completions take no part. The draw is
    seeded by `seed` and the row's content, so an import is reproducible and order-independent."""
    scored = [(s, r) for s, r in zip(scores, responses) if s is not None]
    if len(scored) < 2:
        return None
    best = max(s for s, _ in scored)
    top = [r for s, r in scored if s == best]
    lower = [r for s, r in scored if s < best]
    if len(top) > 1 or not lower:
        return None
    digest = hashlib.sha256("\0".join([str(seed), prompt, *responses]).encode()).digest()
    rejected = random.Random(int.from_bytes(digest[:8], "big")).choice(lower)
    return Preference(prompt, top[0], rejected)


def parse_ultrafeedback(record: dict, seed: int = 0) -> Preference | None:
    """A raw UltraFeedback row (binarised by `binarise`) or an already-binarised one."""
    if "completions" not in record:
        if "chosen" in record and "rejected" in record:
            for key in ("score_chosen", "score_rejected"):
                if key in record:
                    _number(record[key], f"column '{key}'")
            return parse_trl(record, seed)
        raise BadRow("missing column 'completions' (or 'chosen' and 'rejected' for the binarised "
                     f"form); columns here: {', '.join(map(str, record))}")
    column = "prompt" if "prompt" in record else "instruction"
    if column not in record:
        raise BadRow("missing column 'prompt' (or 'instruction'); columns here: "
                     f"{', '.join(map(str, record))}")
    prompt = _nonempty(record[column], f"column '{column}'")
    completions = record["completions"]
    if not isinstance(completions, list | tuple):
        raise BadRow(f"column 'completions' must be a list, got {type(completions).__name__}")
    responses, scores = [], []
    for i, completion in enumerate(completions):
        what = f"completions[{i}]"
        if not isinstance(completion, dict):
            raise BadRow(f"{what} must be an object, got {_short(completion)}")
        key = "response" if completion.get("response") is not None else "text"
        if key not in completion:
            raise BadRow(f"{what} has no 'response' (or 'text')")
        responses.append(_nonempty(completion[key], f"{what}.{key}"))
        scores.append(completion_score(completion, what))
    pref = binarise(prompt, responses, scores, seed)
    return None if pref is None or pref.chosen == pref.rejected else pref


def render_ultrafeedback(pref: Preference, prompt_id: str, confidence: float) -> dict:
    """An `ultrafeedback_binarized` row. We hold a label, not ratings: score_chosen is the label's
    confidence and score_rejected its complement."""
    chosen = _as_messages(pref.prompt, pref.chosen)
    return {"prompt": pref.prompt, "prompt_id": prompt_id, "chosen": chosen,
            "rejected": _as_messages(pref.prompt, pref.rejected), "messages": chosen,
            "score_chosen": float(confidence), "score_rejected": 1.0 - float(confidence)}


PARSERS = {Format.TRL: parse_trl, Format.HH: parse_hh, Format.ULTRAFEEDBACK: parse_ultrafeedback}


def check_format(fmt: str) -> str:
    if fmt not in FORMATS:
        raise DataError(f"unknown format '{fmt}'; use one of {', '.join(FORMATS)}")
    return fmt
