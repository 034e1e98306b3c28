"""`evaluate.signals` params (prefpipe/config/signals.py): typed, validated with the dotted key, and
a default phrase list that catches every flaw phrase of the embedded world and no healthy answer."""
from __future__ import annotations

import dataclasses
import random

import pytest

from prefpipe.config import ParamsError
from prefpipe.config.loader import build
from prefpipe.config.signals import DEFAULT_PHRASES, SignalParams
from prefpipe.evaluate.signals import phrase_rate
from prefpipe.world.content import CAVEATS, CLOSINGS, FILLER_OPENERS, RESTATE
from prefpipe.world.prompts import all_prompts
from prefpipe.world.responses import Style, render


def test_defaults_and_every_knob_documents_itself():
    params = SignalParams()
    assert (params.opener_words, params.ngram, params.overlap_pairs) == (3, 3, 500)
    assert params.phrases == DEFAULT_PHRASES and params.phrases is not DEFAULT_PHRASES
    assert all(f.metadata.get("help") for f in dataclasses.fields(SignalParams))
    with pytest.raises(dataclasses.FrozenInstanceError):
        params.ngram = 4  # type: ignore[misc]


def test_knobs_are_read():
    params = build(SignalParams, {"opener_words": 2, "ngram": 4, "overlap_pairs": 50,
                                  "phrases": ["As an AI"]}, "evaluate.signals", "params.yaml")
    assert params == SignalParams(opener_words=2, ngram=4, overlap_pairs=50, phrases=["As an AI"])
    assert build(SignalParams, {"phrases": []}, "evaluate.signals", "params.yaml").phrases == []


@pytest.mark.parametrize("raw, expected", [
    ({"opener_words": 0}, "evaluate.signals.opener_words must be >= 1, got 0"),
    ({"ngram": 1}, "evaluate.signals.ngram must be >= 2"),
    ({"overlap_pairs": 0}, "evaluate.signals.overlap_pairs must be >= 1, got 0"),
    ({"phrases": ["Hope this helps", " !? "]}, "evaluate.signals.phrases[1] must hold at least one word"),
    ({"ngram": "3"}, "'evaluate.signals.ngram' must be an integer"),
    ({"phrase": ["x"]}, "unknown key 'evaluate.signals.phrase'"),
])
def test_bad_values_name_the_key(raw, expected):
    with pytest.raises(ParamsError) as err:
        build(SignalParams, raw, "evaluate.signals", "params.yaml")
    assert str(err.value).startswith(f"params.yaml: {expected}")


def test_default_phrases_catch_every_flaw_of_the_embedded_world():
    prompt = "What is 3 plus 4?"
    flawed = [f"{opener} The answer is 7." for opener in FILLER_OPENERS]
    flawed += [f"{caveat} The answer is 7." for caveat in CAVEATS]
    flawed += [f"The answer is 7. {closing}" for closing in CLOSINGS]
    flawed.append(f"{RESTATE.format(prompt=prompt)} The answer is 7.")
    for text in flawed:
        assert phrase_rate([text], DEFAULT_PHRASES) == 1.0, text


def test_default_phrases_stay_quiet_on_the_worlds_clean_answers():
    rng = random.Random(0)
    clean = [render(p, Style(), rng) for p in all_prompts(9)]  # no flaw: the gold-preferred answers
    clean += [render(p, Style(wrong=True), rng) for p in all_prompts(9)]  # wrong, not filler
    assert len(clean) > 500 and phrase_rate(clean, DEFAULT_PHRASES) == 0.0
