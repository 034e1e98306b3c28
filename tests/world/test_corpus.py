"""choose_prompts (prefpipe/world/corpus.py): your own prompts each at most once, capped at the
distinct ones; the embedded world's draws exactly as sample_by_family makes them."""
from __future__ import annotations

import hashlib
import random
from collections import Counter

from prefpipe.config.schema import Params
from prefpipe.seeds import SeedPurpose, derive_seed
from prefpipe.world.catalog import to_world_prompt, world_prompt_rows
from prefpipe.world.corpus import choose_prompts, sample_by_family
from prefpipe.world.prompts import WorldPrompt, prompt_id


def own_prompts(sizes: dict[str, int]) -> list[WorldPrompt]:
    return [WorldPrompt(prompt_id(f"{family} {i}"), family, f"{family} {i}", {})
            for family, n in sizes.items() for i in range(n)]


def embedded_default() -> tuple[list[WorldPrompt], list[WorldPrompt]]:
    """The train and held-out prompts of the default params, as generate and evaluate read them."""
    p = Params()
    rows = world_prompt_rows(p.world.max_operand, p.data.heldout_fraction, p.seed)
    train = [WorldPrompt(r["prompt_id"], r["category"], r["prompt"], {}) for r in rows
             if r["split"] == "train"]
    return train, [to_world_prompt(r) for r in rows if r["split"] == "heldout"]


def test_a_count_over_the_distinct_prompts_is_capped_each_used_once():
    prompts = own_prompts({"general": 80, "math": 25, "safety": 17})
    choice = choose_prompts(prompts, 2000, random.Random(0), repeats=False)
    assert sorted(p.prompt_id for p in choice.prompts) == sorted(p.prompt_id for p in prompts)
    assert choice.capped and (choice.available, choice.distinct) == (122, 122)
    assert choice.metrics() == {"prompts_requested": 2000, "prompts": 122, "distinct_prompts": 122}


def test_under_the_cap_prompts_are_distinct_and_families_balanced():
    prompts = own_prompts({"general": 100, "math": 10, "safety": 10})
    choice = choose_prompts(prompts, 30, random.Random(0), repeats=False)
    assert not choice.capped
    assert choice.metrics() == {"prompts_requested": 30, "prompts": 30, "distinct_prompts": 30}
    per_family = Counter(p.family for p in choice.prompts)
    assert min(per_family.values()) >= 6, per_family  # drawn by prompt, general would take ~25


def test_a_repeated_row_counts_once():
    prompts = own_prompts({"general": 3, "math": 2})
    choice = choose_prompts(prompts + prompts[:2], 10, random.Random(0), repeats=False)
    assert (choice.available, len(choice.prompts), choice.distinct) == (5, 5, 5)


def test_the_order_follows_the_rng():
    prompts = own_prompts({"general": 40, "math": 12, "safety": 9})
    first = choose_prompts(prompts, 100, random.Random(3), repeats=False).prompts
    assert first == choose_prompts(prompts, 100, random.Random(3), repeats=False).prompts
    assert first != choose_prompts(prompts, 100, random.Random(4), repeats=False).prompts


def test_with_repeats_the_count_is_drawn_in_full():
    prompts = own_prompts({"general": 4, "math": 2})
    choice = choose_prompts(prompts, 50, random.Random(0), repeats=True)
    assert not choice.capped
    assert (len(choice.prompts), choice.distinct, choice.available) == (50, 6, 6)


def test_the_embedded_default_draws_exactly_what_sample_by_family_draws():
    """generate.prompts 2000 of 842 training prompts and evaluate.prompts 600 of 210 held-out ones
    repeat small families' prompts by design: the default run's outputs must not change."""
    p = Params()
    train, heldout = embedded_default()
    assert (len(train), len(heldout)) == (842, 210)
    eval_seed = derive_seed(p.seed, SeedPurpose.EVALUATION)
    for prompts, count, seed in ((train, p.generate.prompts, p.seed),
                                 (heldout, p.evaluate.prompts, eval_seed)):
        choice = choose_prompts(prompts, count, random.Random(seed), repeats=True)
        assert choice.prompts == sample_by_family(prompts, count, random.Random(seed))
        assert len(choice.prompts) == count and not choice.capped
    assert choose_prompts(train, 2000, random.Random(p.seed), True).distinct == 606
    assert choose_prompts(heldout, 600, random.Random(eval_seed), True).distinct == 160


def test_the_embedded_default_selection_is_pinned():
    """Today's selections of the default run (a changed digest changes pairs, metrics, report)."""
    p = Params()
    train, heldout = embedded_default()
    eval_seed = derive_seed(p.seed, SeedPurpose.EVALUATION)

    def digest(prompts: list[WorldPrompt]) -> str:
        return hashlib.sha256(",".join(x.prompt_id for x in prompts).encode()).hexdigest()[:16]

    assert digest(choose_prompts(train, 2000, random.Random(p.seed), True).prompts) == "71ddb4c707fedde3"
    assert digest(choose_prompts(heldout, 600, random.Random(eval_seed), True).prompts) == "8e3954752f607d00"
