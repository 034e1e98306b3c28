"""The columns of a staged import batch beyond its text and ids, and what a written batch hands the
label stage (`importer` stages, the store writes: `prefpipe.store.import_batches`).

Within a file the first occurrence of a prompt, candidate or pair is the one written, a candidate's
sample_index counts its prompt's distinct responses in order of first appearance (chosen before
rejected), and a prompt keeps the category the file first gave it. `FileFirsts.mark` takes a
batch's ids in file order, batch after batch, and returns those facts as columns: `new_prompt`,
`sample_a`/`sample_b` (null: the candidate came earlier in the file), `new_pair` and `category`
(the prompt's first). Every id is 16 hex digits, so the file's ids are kept as sorted 64-bit
integers (8 bytes an id: 8 MB for a million candidates), and each batch is looked up and merged
in whole arrays, never a row at a time. `word_count` is a response's `num_tokens`
(len(text.split())); `preference_rows` the label stage's rows of a batch's pairs new to the file.

    firsts = FileFirsts()
    for ids in batches:  # dict of prompt_id, category, candidate_a, candidate_b, pair_id lists
        marks = firsts.mark(ids)
    firsts.pair_ids()  # the file's distinct pairs, in file order
"""
from __future__ import annotations

import numpy as np
import pyarrow as pa

# The label stage's preference rows (tasks.label PREFERENCES_SCHEMA, less the round).
PREFERENCE_COLUMNS = ("pair_id", "prompt_id", "prompt", "category", "chosen", "chosen_finished", "rejected",
                      "rejected_finished", "source", "confidence")


def as_ints(ids: list[str]) -> np.ndarray:
    """16-hex-digit ids as uint64 (the same order and equality as the text)."""
    return np.frombuffer(bytes.fromhex("".join(ids)), dtype=">u8").astype(np.uint64)


def firsts(keys: np.ndarray, seen: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Which of `keys` (in file order) are the first of their value and not in sorted `seen`, and
    those values, sorted."""
    values, first = np.unique(keys, return_index=True)  # first: each value's first occurrence
    fresh = ~contains(seen, values)
    mask = np.zeros(len(keys), bool)
    mask[first[fresh]] = True
    return mask, values[fresh]


def contains(seen: np.ndarray, keys: np.ndarray) -> np.ndarray:
    """Which of sorted `keys` are in sorted `seen` (sorted both: the lookups walk `seen` once)."""
    if not len(seen):
        return np.zeros(len(keys), bool)
    at = np.minimum(np.searchsorted(seen, keys), len(seen) - 1)
    return seen[at] == keys


def rank_within(groups: np.ndarray) -> np.ndarray:
    """Each element's count of earlier elements with the same group value (0, 1, ...)."""
    order = np.argsort(groups, kind="stable")
    ordered = groups[order]
    starts = np.flatnonzero(np.r_[True, ordered[1:] != ordered[:-1]])
    sizes = np.diff(np.r_[starts, len(ordered)])
    ranks = np.empty(len(groups), np.int64)
    ranks[order] = np.arange(len(groups)) - np.repeat(starts, sizes)
    return ranks


class FileFirsts:
    """One file's prompts (with their first category and distinct responses so far), candidates
    and pairs, as sorted uint64 ids; and its distinct pairs in file order."""

    def __init__(self) -> None:
        empty = np.empty(0, np.uint64)
        self.prompts, self.candidates, self.pairs = empty, empty, empty
        self.responses = np.empty(0, np.int64)  # per prompt: distinct candidates so far
        self.category = np.empty(0, np.int64)  # per prompt: its first category's code
        self.codes: dict[str, int] = {}
        self.names: list[str] = []
        self.pair_order: list[np.ndarray] = []  # the new pairs of each batch, in file order

    def mark(self, ids: dict[str, list[str]]) -> dict[str, pa.Array]:
        """The batch's `new_prompt`, `category` (its prompt's first), `sample_a`, `sample_b` and
        `new_pair` columns; the batch is then part of what the file has seen."""
        values, first, inverse = np.unique(as_ints(ids["prompt_id"]), return_index=True, return_inverse=True)
        fresh = ~contains(self.prompts, values)
        new_prompt = np.zeros(len(inverse), bool)
        new_prompt[first[fresh]] = True
        self._add_prompts(values[fresh], [ids["category"][i] for i in first[fresh].tolist()])
        at = np.searchsorted(self.prompts, values)[inverse]  # every prompt of the batch is known now
        sides = np.empty(2 * len(at), np.uint64)  # chosen then rejected, row by row
        sides[0::2], sides[1::2] = as_ints(ids["candidate_a"]), as_ints(ids["candidate_b"])
        new_side, new_candidates = firsts(sides, self.candidates)
        owner = np.repeat(at, 2)[new_side]
        samples = np.zeros(len(sides), np.int64)
        samples[new_side] = self.responses[owner] + rank_within(owner)
        counted, counts = np.unique(owner, return_counts=True)
        self.responses[counted] += counts
        self.candidates = merged(self.candidates, new_candidates)
        pairs = as_ints(ids["pair_id"])
        new_pair, new_pairs = firsts(pairs, self.pairs)
        self.pairs = merged(self.pairs, new_pairs)
        self.pair_order.append(pairs[new_pair])
        names = self.names
        return {"new_prompt": pa.array(new_prompt),
                "category": pa.array([names[code] for code in self.category[at].tolist()], pa.string()),
                "sample_a": pa.array(samples[0::2], pa.int32(), mask=~new_side[0::2]),
                "sample_b": pa.array(samples[1::2], pa.int32(), mask=~new_side[1::2]),
                "new_pair": pa.array(new_pair)}

    def pair_count(self) -> int:
        return len(self.pairs)

    def pair_ids(self) -> tuple[str, ...]:
        """The file's distinct pair ids, in file order (as text only now: 8 bytes each till then)."""
        return tuple(f"{key:016x}" for batch in self.pair_order for key in batch.tolist())

    def _add_prompts(self, keys: np.ndarray, categories: list[str]) -> None:
        """Sorted new `keys`, with their categories, put in place (no responses yet)."""
        for name in categories:
            if name not in self.codes:
                self.codes[name] = len(self.names)
                self.names.append(name)
        where = np.searchsorted(self.prompts, keys)
        self.prompts = np.insert(self.prompts, where, keys)
        self.responses = np.insert(self.responses, where, 0)
        self.category = np.insert(self.category, where, [self.codes[name] for name in categories])


def merged(seen: np.ndarray, new: np.ndarray) -> np.ndarray:
    """Sorted `seen` with sorted `new` (none of them in it) put in place."""
    return np.insert(seen, np.searchsorted(seen, new), new)


# ASCII whitespace as str.split() has it (str.isspace): mapped to b" ", every other byte to b"x".
_WORD_BYTES = bytes(0x20 if chr(i).isspace() else 0x78 for i in range(128)) + b"x" * 128


def word_count(text: str) -> int:
    """len(text.split()), without making the words: for ASCII text, the count of a non-space byte
    after a space (or at the start) once every whitespace byte is a space."""
    if not text.isascii():
        return len(text.split())
    marks = text.encode().translate(_WORD_BYTES)
    return marks.count(b" x") + marks.startswith(b"x")


def preference_rows(batch: pa.Table, source: str) -> pa.Table:
    """The label stage's preference rows of a staged batch's pairs new to the file, in file order
    (chosen = candidate a), each with its prompt's category as the file first gave it."""
    rows = batch.filter(batch.column("new_pair"))
    n = rows.num_rows
    rows = rows.append_column("chosen_finished", pa.repeat(True, n)).append_column(
        "rejected_finished", pa.repeat(True, n)).append_column(
        "source", pa.repeat(pa.scalar(source, pa.string()), n)).append_column(
        "confidence", pa.repeat(pa.scalar(1.0, pa.float64()), n))
    return rows.select(list(PREFERENCE_COLUMNS))
