"""Routing pairs to verifiers, the critic, simulated annotators and human queues; escalation.

Every labeler is the real one: the sandboxed verifier, the rule-judge critic, simulated annotators
and human queues in a DuckDB file."""
from __future__ import annotations

from dataclasses import replace

import pyarrow as pa
import pytest

from prefpipe.annotate import annotation
from prefpipe.annotate.human_queue import HumanQueue, pending_tasks
from prefpipe.config.label import (
    MISSING_TARGETS,
    SKIP,
    EscalationParams,
    HumanParams,
    LabelParams,
    SimulatedParams,
)
from prefpipe.label.critic import CritiqueResult, RuleJudge, critique, load_constitution
from prefpipe.label.route import ORDER_OF_WORK, LabelRouter, labeler_for
from prefpipe.label.types import Label, PairToLabel
from prefpipe.label.verifier import Verifier
from prefpipe.store import Store
from prefpipe.verify.sandbox import SandboxLimits
from prefpipe.vocab import Labeler
from prefpipe.world.prompts import WorldPrompt, all_prompts

PROMPTS = {p.prompt: p for p in all_prompts(5)}
ADD = PROMPTS["What is 3 plus 4?"]
CODE = PROMPTS["Write a function g(a, b) that returns the larger of a and b."]
EXPLAIN = PROMPTS["Explain why ice floats."]
TEA = PROMPTS["How do I make tea?"]
HARM = next(p for p in PROMPTS.values() if p.family == "harmful")
WORLD = {p.prompt_id: p for p in (ADD, CODE, EXPLAIN, TEA, HARM)}
ICE = "Ice is less dense than liquid water."


def pair(prompt, a, b, pair_id, finished_a=True, finished_b=True) -> PairToLabel:
    return PairToLabel(pair_id, prompt.prompt_id, prompt.family, a, finished_a, b, finished_b, prompt.prompt)


def router(params: LabelParams, store: Store | None = None, seed: int = 0) -> LabelRouter:
    constitution, judge = load_constitution(None), RuleJudge()
    return LabelRouter(
        params, seed, WORLD, verifier=Verifier(SandboxLimits(wall_s=10.0), workers=2),
        critic=lambda pairs: critique(pairs, WORLD, constitution, judge, seed, params.critic.tie_margin),
        humans=HumanQueue(store, params.human, seed) if store else None)


def test_labeler_for_uses_default():
    routing = {"code": "verifier", "default": "critic"}
    assert labeler_for("code", routing) is Labeler.VERIFIER
    assert labeler_for("poetry", routing) is Labeler.CRITIC


def test_every_labeler_has_a_step_and_a_place_in_the_order_of_work():
    steps = router(LabelParams()).steps
    assert set(steps) == set(Labeler) == set(ORDER_OF_WORK) and len(ORDER_OF_WORK) == len(Labeler)
    assert ORDER_OF_WORK[0] is Labeler.VERIFIER  # cheap and exact first; its undecided pairs move on


def test_every_fallback_target_of_the_config_has_a_labeler():
    fallbacks = router(LabelParams()).fallbacks
    assert {name for name in MISSING_TARGETS if name != SKIP} == set(fallbacks)


def test_a_step_cannot_hand_pairs_back_to_a_labeler_that_already_ran():
    routing = router(LabelParams(routing={"default": "critic"}))
    routing.steps[Labeler.CRITIC] = lambda pairs, routed: {Labeler.VERIFIER: pairs}
    with pytest.raises(ValueError, match="critic cannot hand pairs to verifier"):
        routing.run([pair(EXPLAIN, ICE, "Great question! " + ICE, "e1")])


def test_verifier_decides_checkable_pairs_and_hands_undecided_ones_to_the_critic():
    pairs = [pair(ADD, "The answer is 7.", "The answer is 8.", "add"),
             pair(CODE, "def g(a, b): return a + b", "def g(a, b): return max(a, b)", "code"),
             pair(ADD, "The answer is 7.", "Great question! The answer is 7.", "both-right")]
    routed = router(LabelParams()).run(pairs)
    assert routed.final["add"].source == "verifier" and routed.final["add"].choice == "a"
    assert routed.final["code"].source == "verifier" and routed.final["code"].choice == "b"
    undecided = routed.final["both-right"]
    assert undecided.source == "critic" and undecided.principle
    assert [lab.source for lab in routed.labels].count("verifier") == 2
    assert routed.verifier_undecided == 1  # both-right: verified alike, passed on


def test_simulated_overlap_gives_k_labels_and_a_majority():
    params = LabelParams(simulated=SimulatedParams(annotators=5, overlap=3, noise=0.0, temperature=0.01))
    pairs = [pair(EXPLAIN, ICE, "Great question! " + ICE, f"e{i}") for i in range(6)]
    routed = router(replace(params, routing={"default": "simulated"})).run(pairs)
    for p in pairs:
        mine = [lab for lab in routed.labels if lab.pair_id == p.pair_id]
        assert len(mine) == 3 and len({lab.annotator for lab in mine}) == 3
        assert routed.final[p.pair_id].choice == "a" and routed.final[p.pair_id].confidence == 1.0
    used = {lab.annotator for lab in routed.labels}
    assert used <= {f"sim-{k}" for k in range(1, 6)} and len(used) > 3  # different annotators per pair


def test_low_confidence_critic_labels_escalate_and_the_second_opinion_trains():
    params = LabelParams(routing={"default": "critic"},
                         escalate=EscalationParams(to="simulated", critic_confidence_below=0.999),
                         simulated=SimulatedParams(noise=0.0, temperature=0.01))
    pairs = [pair(EXPLAIN, ICE, "Great question! " + ICE, "e1"), pair(TEA, "zzz", "zzz zzz", "t1")]
    routed = router(params).run(pairs)
    critic = {lab.pair_id: lab for lab in routed.labels if lab.source == "critic"}
    assert set(critic) == {"e1", "t1"}
    doubtful = sorted(pid for pid, lab in critic.items() if lab.confidence < 0.999)
    assert routed.escalated == doubtful and doubtful
    for pid in doubtful:
        assert routed.final[pid].source == "simulated"
    for pid in set(critic) - set(doubtful):
        assert routed.final[pid].source == "critic"


def test_critic_verifier_disagreement_is_escalated():
    # the critic judges style under most principles; the verifier only the answer
    wrong_but_plain = "The answer is 8."
    right_but_padded = "Great question! The answer is 7. Hope this helps!"
    pairs = [pair(ADD, wrong_but_plain, right_but_padded, f"d{i}") for i in range(8)]
    params = LabelParams(escalate=EscalationParams(to="simulated", verifier_disagreement=True),
                         simulated=SimulatedParams(noise=0.0, temperature=0.01))
    routed = router(params, seed=1).run(pairs)
    critic = {lab.pair_id: lab.choice for lab in routed.labels if lab.source == "critic"}
    assert set(critic) == {p.pair_id for p in pairs}  # the critic saw every verified pair
    disagreeing = sorted(pid for pid, choice in critic.items() if choice != "b")
    assert disagreeing and routed.escalated == disagreeing
    for pid in disagreeing:
        assert routed.final[pid].source == "simulated"


def test_simulated_routing_needs_world_prompts():
    stranger = PairToLabel("x", "not-in-world", "poetry", "a", True, "b", True, "Write a poem.")
    with pytest.raises(ValueError, match="gold answers, which your prompts lack; route it to 'critic'"):
        router(LabelParams(routing={"default": "simulated"})).run([stranger])


def test_verifier_routing_needs_the_prompts_in_the_table():
    stranger = PairToLabel("x", "not-in-world", "math", "4", True, "5", True, "What is 2 + 2?")
    with pytest.raises(ValueError, match=r"\['math'\] are routed to the verifier, but their pairs name "
                                         "prompts missing from the prompt table"):
        router(LabelParams(routing={"default": "verifier"})).run([stranger])


def test_user_prompts_are_verified_by_what_they_carry_and_the_rest_go_undecided():
    """Your prompts have no gold (world: None); the verifier checks those with an answer (`checks`),
    and hands the others, as unverifiable, to verifier.undecided (here a stub critic)."""
    half = WorldPrompt("m1", "math", "Half of one?", {"answer": "1/2"}, "mine.jsonl")
    pairs = [PairToLabel("right", "m1", "math", "The answer is 3.", True, "\\boxed{0.5}", True),
             PairToLabel("bare", "m2", "math", "4", True, "5", True),
             PairToLabel("tied", "m1", "math", "The answer is 3.", True, "The answer is 4.", True)]
    asked = []

    def stub_critic(given):
        asked.extend(p.pair_id for p in given)
        return CritiqueResult(labels=[Label(p.pair_id, "critic", "stub", "a", 0.9) for p in given])

    routed = LabelRouter(LabelParams(routing={"default": "verifier"}), 0, {"m1": None, "m2": None},
                         verifier=Verifier(SandboxLimits(), workers=1), critic=stub_critic,
                         checks={"m1": half, "m2": None}).run(pairs)
    assert routed.final["right"].source == "verifier" and routed.final["right"].choice == "b"
    assert routed.unverifiable == ["bare"] and asked == ["bare", "tied"]
    assert routed.final["bare"].source == routed.final["tied"].source == "critic"


def _store_with_pairs(tmp_path, pairs: list[PairToLabel]) -> Store:
    store = Store(tmp_path / "store.duckdb")
    store.upsert("prompts", pa.Table.from_pylist([
        {"prompt_id": p.prompt_id, "source": "embedded", "category": p.family, "prompt": p.prompt,
         "meta": p.meta_json, "split": "train"} for p in WORLD.values()]))
    candidates, rows = [], []
    for p in pairs:
        for side, text, done in (("a", p.response_a, p.finished_a), ("b", p.response_b, p.finished_b)):
            candidates.append({"candidate_id": f"{p.pair_id}-{side}", "prompt_id": p.prompt_id,
                               "model_version": "m", "generation_key": "g", "sample_index": 0,
                               "response": text, "finished": done, "num_tokens": len(text.split())})
        rows.append({"pair_id": p.pair_id, "prompt_id": p.prompt_id, "candidate_a": f"{p.pair_id}-a",
                     "candidate_b": f"{p.pair_id}-b", "generation_key": "g"})
    store.upsert("candidates", pa.Table.from_pylist(candidates))
    store.upsert("pairs", pa.Table.from_pylist(rows))
    return store


def test_human_routing_queues_pairs_falls_back_then_collects_answers(tmp_path):
    harmful = [pair(HARM, "I can't help with that.", "Sure thing! I can't help with that.", f"h{i}")
               for i in range(4)]
    checkable = [pair(ADD, "The answer is 7.", "The answer is 8.", "gold-add")]
    store = _store_with_pairs(tmp_path, harmful + checkable)
    for name in ("ann1", "ann2", "ann3"):
        annotation.add_annotator(store, name)
    params = LabelParams(routing={"arithmetic": "verifier", "harmful": "human", "default": "critic"},
                         human=HumanParams(annotators=["ann1", "ann2", "ann3"], overlap=2, gold_every=2))
    first = router(params, store).run(harmful + checkable)
    assert first.human_pending == 4 * 2 and first.human_queued >= 8
    assert {first.final[p.pair_id].source for p in harmful} == {"critic"}  # human.missing: critic
    gold_tasks = store.query("SELECT count(*) AS n FROM annotation_tasks WHERE gold_choice IS NOT NULL")
    assert gold_tasks["n"][0].as_py() >= 1  # the verified pair is mixed in as a known answer

    for name in ("ann1", "ann2", "ann3"):  # each annotator prefers the plain refusal (pair side a)
        while (task := annotation.next_task(store, name)) is not None:
            first_is_a = task.first == "I can't help with that." or task.first == "The answer is 7."
            annotation.submit(store, name, task.task_id, "first" if first_is_a else "second", None)
    assert pending_tasks(store) == 0

    second = router(params, store).run(harmful + checkable)
    assert second.human_pending == 0
    for p in harmful:
        final = second.final[p.pair_id]
        assert (final.source, final.choice, final.annotator) == ("human", "a", "majority-of-2")
    assert second.final["gold-add"].source == "verifier"
    gold = annotation.gold_accuracy(store)
    assert gold and all(correct == n for correct, n in gold.values())


def test_routing_is_deterministic_for_a_seed():
    pairs = [pair(EXPLAIN, ICE, "Great question! " + ICE, f"e{i}") for i in range(20)]
    params = LabelParams(routing={"default": "simulated"}, simulated=SimulatedParams(noise=0.5))
    first = router(params, seed=3).run(pairs)
    assert first.labels == router(params, seed=3).run(pairs).labels
    other = router(params, seed=4).run(pairs)
    assert [lab.choice for lab in first.labels] != [lab.choice for lab in other.labels]
