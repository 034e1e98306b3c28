"""The trainers' datasets: token ids of preference pairs in an Arrow file on disk, memory-mapped.

Per pair a trainer needs the ids of the prompt (rendered and encoded as `encode_prompt` does), of
the chosen and of the rejected response (as `encode_response`: a leading space, EOS when finished)
and the label's confidence. As Python lists of ints those cost tens of bytes a token (the reward
dataset of 50K pairs of ~700 tokens took 1.7 GB); here they are int32 list columns of an Arrow IPC
file, tokenised `chunk_rows` pairs at a time with the tokenizer's batch call (the ids the per-row
calls give). The file is memory-mapped for its layout (each record batch's offsets, 4 bytes a row
and column), and a row's ids are read with one pread from the page cache: a trainer collates only
the batch it draws, and its memory stays flat in the number of pairs (mapped pages read at random
would each count in its RSS).

The file lives in a temp folder (under `workdir`, else $PREFPIPE_TOKENISED_DIR, else the system
temp dir: never in a DVC-tracked folder) that `close()` removes, as does leaving a `with` block or,
failing both, the object's collection.

    with tokenise_pairs(tokenizer, preferences) as data:  # dicts, an Arrow table or record batches
        batch = data.batch(tokenizer, idx, max_length)     # TokenBatch: chosen rows, then rejected
    train = tokenise_parquet(tokenizer, "data/preferences.parquet", keep=select)  # a batch at a time
"""
from __future__ import annotations

import contextlib
import mmap
import os
import shutil
import tempfile
import weakref
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from pathlib import Path

import numpy as np
import pyarrow as pa

from prefpipe.models.formatting import TokenBatch, collate, prompt_text
from prefpipe.store import parquet_batches

CHUNK_ROWS = 1024  # pairs tokenised per batch call and written per record batch
IDS = pa.list_(pa.int32())
SCHEMA = pa.schema([("prompt", IDS), ("chosen", IDS), ("rejected", IDS), ("confidence", pa.float64())])
IDS_COLUMNS = ("prompt", "chosen", "rejected")
PairSource = (Sequence[Mapping] | pa.Table | pa.RecordBatch
              | Iterable[pa.RecordBatch | pa.Table | Sequence[Mapping]])


class TokenisedPairs:
    """Read access to a file `tokenise_pairs` wrote: `len`, `ids(idx)`, `batch(...)`, `confidences()`."""

    def __init__(self, path: str | Path, owned_dir: str | Path | None = None) -> None:
        self.path = Path(path)
        self._fd = os.open(self.path, os.O_RDONLY)
        self._map = mmap.mmap(self._fd, 0, access=mmap.ACCESS_READ)
        mapped = pa.py_buffer(self._map)
        self._table = pa.ipc.open_file(pa.BufferReader(mapped)).read_all()
        batches = self._table.to_batches()
        self._starts = np.cumsum([0] + [batch.num_rows for batch in batches])  # each batch's first row
        # per column, per record batch: its offsets (read into memory: 4 bytes a row) and where its
        # values start in the file (the batch's buffers are views of the map, which is never read);
        # a row is read from its own batch (Arrow's take on a many-chunked column copies far more)
        self._where = {name: [self._layout(batch.column(name), mapped.address) for batch in batches]
                       for name in IDS_COLUMNS}
        self._cleanup = weakref.finalize(self, _close, self._fd, owned_dir)

    def __len__(self) -> int:
        return self._table.num_rows

    def __enter__(self) -> TokenisedPairs:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def ids(self, idx: Sequence[int]) -> tuple[list[list[int]], list[list[int]], list[list[int]]]:
        """Prompt, chosen and rejected ids of the pairs at `idx`, in that order."""
        idx = np.asarray(idx, dtype=np.int64)
        if len(idx) and (idx.min() < 0 or idx.max() >= len(self)):
            raise IndexError(f"pair index out of range 0..{len(self) - 1}")
        chunk = np.searchsorted(self._starts, idx, side="right") - 1
        local = idx - self._starts[chunk]
        out = []
        for name in IDS_COLUMNS:
            rows = []
            for c, i in zip(chunk.tolist(), local.tolist()):
                offsets, values_at = self._where[name][c]
                first, end = offsets[i:i + 2].tolist()
                raw = os.pread(self._fd, 4 * (end - first), values_at + 4 * first)
                rows.append(np.frombuffer(raw, dtype="<i4").tolist())
            out.append(rows)
        return tuple(out)

    def _layout(self, column: pa.ListArray, base: int) -> tuple[np.ndarray, int]:
        """(offsets, file position of the values) of one record batch's list column."""
        offsets_at = column.buffers()[1].address - base + 4 * column.offset
        raw = os.pread(self._fd, 4 * (len(column) + 1), offsets_at)
        return np.frombuffer(raw, dtype="<i4"), column.values.buffers()[1].address - base

    def batch(self, tokenizer, idx: Sequence[int], max_length: int) -> TokenBatch:
        """One batch holding the chosen rows then the rejected rows (one forward pass for both)."""
        prompts, chosen, rejected = self.ids(idx)
        return collate(tokenizer, prompts + prompts, chosen + rejected, max_length)

    def confidences(self) -> np.ndarray:
        """Every pair's label confidence, in order (float64)."""
        return np.array(self._table.column("confidence").to_numpy(), dtype=np.float64)  # a copy

    def close(self) -> None:
        """Unmap, close and delete the file (and its temp folder, if this object made it)."""
        self._table = self._where = None
        try:
            self._map.close()
        except BufferError:  # an Arrow view still held elsewhere: the map goes when it does
            pass
        self._cleanup()


@contextlib.contextmanager
def closing_built(data: TokenisedPairs, source: object) -> Iterator[TokenisedPairs]:
    """Close `data` on leaving, unless it is `source` itself (pairs the caller tokenised and closes)."""
    try:
        yield data
    finally:
        if data is not source:
            data.close()


def tokenise_pairs(tokenizer, pairs: PairSource, workdir: str | Path | None = None,
                   chunk_rows: int = CHUNK_ROWS) -> TokenisedPairs:
    """Tokenise `pairs` into a new Arrow file and open it.

    `pairs`: preference rows ({'prompt', 'chosen', 'rejected'}, optional 'chosen_finished' and
    'rejected_finished' (default True) and 'confidence' (default 1.0)) as a list of dicts, an
    Arrow table or record batch, or an iterable of those (e.g. a Parquet file's batches)."""
    folder = tempfile.mkdtemp(prefix="prefpipe-tokenised-",
                              dir=workdir or os.environ.get("PREFPIPE_TOKENISED_DIR") or None)
    path = Path(folder) / "pairs.arrow"
    try:
        with pa.OSFile(str(path), "wb") as sink, pa.ipc.new_file(sink, SCHEMA) as writer:
            for columns in _chunks(pairs, chunk_rows):
                writer.write_batch(encode_chunk(tokenizer, columns))
        return TokenisedPairs(path, owned_dir=folder)
    except BaseException:
        _remove(folder)
        raise


def tokenise_parquet(tokenizer, path: str | Path, keep: Callable[[list[dict]], list[dict]] | None = None,
                     workdir: str | Path | None = None, chunk_rows: int = CHUNK_ROWS) -> TokenisedPairs:
    """`tokenise_pairs` of a preferences Parquet file read a record batch at a time, each batch's
    rows passed through `keep` first (a stage's selection: a train split, the rounds it trains on),
    so no more than a batch of the file is ever held as Python rows."""
    return tokenise_pairs(tokenizer, parquet_rows(path, keep, chunk_rows=chunk_rows), workdir, chunk_rows)


def parquet_rows(path: str | Path, keep: Callable[[list[dict]], list[dict]] | None = None,
                 columns: Sequence[str] | None = None, chunk_rows: int = CHUNK_ROWS) -> Iterator[list[dict]]:
    """A Parquet file's rows as dicts (of `columns` only, if given), a record batch at a time, each
    batch passed through `keep` first. A missing file raises at the call, not at the first batch."""
    batches = parquet_batches(path, columns, batch_rows=chunk_rows)  # checks the file is there
    return (keep(batch.to_pylist()) if keep is not None else batch.to_pylist() for batch in batches)


def encode_chunk(tokenizer, columns: Mapping[str, list]) -> pa.RecordBatch:
    """One record batch of SCHEMA from column lists ('prompt', 'chosen', 'rejected', and
    optionally 'chosen_finished', 'rejected_finished', 'confidence')."""
    n = len(columns["prompt"])
    finished = [columns.get(f"{side}_finished") or [True] * n for side in ("chosen", "rejected")]
    prompts = _encode(tokenizer, [prompt_text(tokenizer, p) for p in columns["prompt"]])
    responses = [_responses(tokenizer, columns[side], done)
                 for side, done in zip(("chosen", "rejected"), finished)]
    confidence = [1.0 if c is None else float(c) for c in columns.get("confidence") or [1.0] * n]
    return pa.RecordBatch.from_arrays([pa.array(prompts, IDS), pa.array(responses[0], IDS),
                                       pa.array(responses[1], IDS), pa.array(confidence, pa.float64())],
                                      schema=SCHEMA)


def _encode(tokenizer, texts: list[str]) -> list[list[int]]:
    """The ids `tokenizer(text, add_special_tokens=False)` gives each text, in one batch call;
    a text repeated in the chunk (a prompt with several pairs) is encoded once."""
    unique = list(dict.fromkeys(texts))
    ids = tokenizer(unique, add_special_tokens=False, return_attention_mask=False,
                    return_token_type_ids=False)["input_ids"]
    if len(unique) == len(texts):
        return ids
    by_text = dict(zip(unique, ids))
    return [list(by_text[text]) for text in texts]


def _responses(tokenizer, responses: list[str], finished: list) -> list[list[int]]:
    """`encode_response` of each: ids of ' ' + the stripped text, then EOS if finished."""
    ids = _encode(tokenizer, [" " + response.strip() for response in responses])
    eos = [tokenizer.eos_token_id]
    return [row + eos if done else row for row, done in zip(ids, finished)]


def _chunks(pairs: PairSource, chunk_rows: int) -> Iterator[dict[str, list]]:
    """Column lists of at most `chunk_rows` pairs each, in order, from any PairSource."""
    if isinstance(pairs, pa.Table | pa.RecordBatch):
        pairs = [pairs]
    elif isinstance(pairs, Sequence) and (not pairs or isinstance(pairs[0], Mapping)):
        pairs = [pairs]
    for part in pairs:
        for start in range(0, len(part), chunk_rows):
            piece = part[start:start + chunk_rows]
            columns = _columns(piece)
            if columns["prompt"]:
                yield columns


def _columns(piece: pa.Table | pa.RecordBatch | Sequence[Mapping]) -> dict[str, list]:
    if isinstance(piece, pa.Table | pa.RecordBatch):
        return {name: piece.column(name).to_pylist() for name in piece.schema.names
                if name in {*SCHEMA.names, "chosen_finished", "rejected_finished"}}
    columns = {name: [row[name] for row in piece] for name in ("prompt", "chosen", "rejected")}
    for name, default in (("chosen_finished", True), ("rejected_finished", True), ("confidence", 1.0)):
        columns[name] = [row.get(name, default) for row in piece]
    return columns


def _remove(folder: str | Path | None) -> None:
    if folder is not None:
        shutil.rmtree(folder, ignore_errors=True)


def _close(fd: int, folder: str | Path | None) -> None:
    os.close(fd)
    _remove(folder)
