"""Route each pair to a labeler by category, escalate doubtful machine labels, and pick the label
each pair trains on.

Order of work: verifiers first (cheap and exact), then the critic (including verifier-undecided
pairs), then simulated annotators, then humans (their queues get the human-routed and escalated
pairs; labels already submitted are collected, missing ones fall back as `human.missing` says)."""
from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

from prefpipe.config.label import SKIP, USE_INSTEAD, needs_world
from prefpipe.label.agreement import aggregate
from prefpipe.label.simulated import simulated_label
from prefpipe.label.types import Label, PairToLabel
from prefpipe.seeds import pair_rng
from prefpipe.vocab import Labeler, LabelSource
from prefpipe.world.prompts import WorldPrompt

# Pairs a labeler passes on, by the labeler that takes them (undecided, escalated).
Handoff = dict[Labeler, list[PairToLabel]]


def labeler_for(category: str, routing: Mapping[str, str]) -> Labeler:
    """The labeler `routing` names for `category` ('default' covers the rest)."""
    return Labeler(routing.get(category, routing["default"]))


@dataclass
class Routed:
    """The outcome of routing: every individual label, and the one label each pair trains on."""
    final: dict[str, Label] = field(default_factory=dict)
    labels: list[Label] = field(default_factory=list)
    critic_judgments: list[dict] = field(default_factory=list)
    escalated: list[str] = field(default_factory=list)
    unverifiable: list[str] = field(default_factory=list)  # verifier-routed pairs with nothing to check
    verifier_undecided: int = 0  # checkable pairs whose two responses verified alike
    human_queued: int = 0
    human_pending: int = 0


class LabelRouter:
    """Runs the labelers `params.routing` asks for. Labelers are injected so tests can pick them:
    `verifier` (prefpipe.label.verifier.Verifier), `critic` (a callable pairs -> CritiqueResult),
    `humans` (prefpipe.annotate.human_queue.HumanQueue).

    `world` maps prompt ids to the embedded world's prompts (gold facts; None for your own),
    `checks` to what the verifier checks (`catalog.to_checked_prompt`; default: `world`). A
    verifier-routed pair whose prompt has nothing to check (None) is `unverifiable` and goes to
    `verifier.undecided`, like a pair whose responses verify alike.

    `steps` is the registry: one step per `Labeler`, run in `ORDER_OF_WORK`. A step labels its
    group and returns the pairs it passes on to a later labeler (verifier-undecided pairs,
    escalated pairs). A new labeler is a `Labeler` member, a step here and a place in the order.
    `fallbacks` are the labelers `human.missing` may name. During `run`, `_input` holds the pairs
    routed, in their order (escalations follow it)."""

    def __init__(self, params, seed: int, world: Mapping[str, WorldPrompt | None], verifier=None,
                 critic=None, humans=None, checks: Mapping[str, WorldPrompt | None] | None = None):
        self.params, self.seed, self.world = params, seed, world
        self.checks = world if checks is None else checks
        self.verifier, self.critic, self.humans = verifier, critic, humans
        self.steps: dict[Labeler, Callable[[list[PairToLabel], Routed], Handoff]] = {
            Labeler.VERIFIER: self._verifier_step, Labeler.CRITIC: self._critic_step,
            Labeler.SIMULATED: self._simulated_step, Labeler.HUMAN: self._human_step}
        # Labelers that take human-routed pairs no human answered (`human.missing`).
        self.fallbacks: dict[Labeler, Callable[[list[PairToLabel], Routed], object]] = {
            Labeler.CRITIC: lambda pairs, routed: self._critique(pairs, routed, decide=True),
            Labeler.SIMULATED: self._simulate}
        self._input: Sequence[PairToLabel] = ()

    def run(self, pairs: Sequence[PairToLabel]) -> Routed:
        routed, self._input = Routed(), pairs
        groups: dict[Labeler, list[PairToLabel]] = defaultdict(list)
        for pair in pairs:
            groups[labeler_for(pair.category, self.params.routing)].append(pair)
        for labeler in ORDER_OF_WORK:
            for target, passed in self.steps[labeler](groups.pop(labeler, []), routed).items():
                if passed and ORDER_OF_WORK.index(target) <= ORDER_OF_WORK.index(labeler):
                    raise ValueError(f"{labeler} cannot hand pairs to {target}, which has already run")
                groups[target].extend(passed)
        routed.escalated = sorted(set(routed.escalated))
        return routed

    def _escalate_to(self) -> Labeler | None:
        return Labeler(self.params.escalate.to) if self.params.escalate.to else None

    def _verifier_step(self, pairs: list[PairToLabel], routed: Routed) -> Handoff:
        """Verify; hand undecided pairs to `verifier.undecided`, and (with
        `escalate.verifier_disagreement`) pairs where a second-opinion critic disagrees to
        `escalate.to`."""
        verified = self._verify(pairs, routed)
        handoff: Handoff = {Labeler(self.params.verifier.undecided):
                            [p for p in verified if p.pair_id not in routed.final]}
        escalate_to = self._escalate_to()
        if escalate_to and self.params.escalate.verifier_disagreement:
            decided = [p for p in verified if p.pair_id in routed.final]
            second = self._critique(decided, routed, decide=False)
            disagree = [p for p in decided if second[p.pair_id].choice != routed.final[p.pair_id].choice]
            routed.escalated += [p.pair_id for p in disagree]
            handoff.setdefault(escalate_to, []).extend(disagree)
        return handoff

    def _critic_step(self, pairs: list[PairToLabel], routed: Routed) -> Handoff:
        """Critique; hand labels below `escalate.critic_confidence_below` to `escalate.to`, in the
        order of the pairs routed (not of the critic's group, which ends with verifier-undecided)."""
        critic_labels = self._critique(pairs, routed, decide=True)
        threshold, escalate_to = self.params.escalate.critic_confidence_below, self._escalate_to()
        if not (escalate_to and threshold > 0):
            return {}
        doubtful = [p for p in self._input if p.pair_id in critic_labels
                    and critic_labels[p.pair_id].confidence < threshold]
        routed.escalated += [p.pair_id for p in doubtful]
        return {escalate_to: doubtful}

    def _simulated_step(self, pairs: list[PairToLabel], routed: Routed) -> Handoff:
        self._simulate(pairs, routed)
        return {}

    def _human_step(self, pairs: list[PairToLabel], routed: Routed) -> Handoff:
        self._ask_humans(pairs, routed)
        return {}

    def _verify(self, pairs: list[PairToLabel], routed: Routed) -> list[PairToLabel]:
        if not pairs:
            return []
        unknown = sorted({p.category for p in pairs if p.prompt_id not in self.checks})
        if unknown:
            raise ValueError(f"categories {unknown} are routed to the verifier, but their pairs name "
                             "prompts missing from the prompt table; rebuild it (dvc repro prepare)")
        routed.unverifiable += [p.pair_id for p in pairs if self.checks[p.prompt_id] is None]
        checkable = [p for p in pairs if self.checks[p.prompt_id] is not None]
        labels = self.verifier.label(checkable, self.checks) if checkable else []
        routed.verifier_undecided += sum(label is None for label in labels)
        for label in labels:
            if label is not None:
                routed.labels.append(label)
                routed.final[label.pair_id] = label
        return pairs

    def _critique(self, pairs: list[PairToLabel], routed: Routed, decide: bool) -> dict[str, Label]:
        if not pairs:
            return {}
        result = self.critic(pairs)
        routed.labels.extend(result.labels)
        routed.critic_judgments.extend(result.judgments)
        by_pair = {label.pair_id: label for label in result.labels}
        if decide:
            routed.final.update(by_pair)
        return by_pair

    def _simulate(self, pairs: list[PairToLabel], routed: Routed) -> None:
        sim = self.params.simulated
        for pair in pairs:
            prompt = self.world.get(pair.prompt_id)
            if prompt is None:
                raise ValueError(f"pair {pair.pair_id} (category '{pair.category}') is routed to simulated "
                                 f"annotators, but {needs_world(Labeler.SIMULATED)}; route it to "
                                 f"{USE_INSTEAD}")
            rng = pair_rng(self.seed, pair.pair_id, "annotators")
            chosen = rng.sample(range(sim.annotators), sim.overlap)
            labels = [simulated_label(pair, prompt, f"sim-{k + 1}", sim.noise, sim.temperature, self.seed,
                                      sim.length_bias) for k in sorted(chosen)]
            routed.labels.extend(labels)
            routed.final[pair.pair_id] = aggregate(labels)[pair.pair_id]

    def _ask_humans(self, pairs: list[PairToLabel], routed: Routed) -> None:
        if not pairs:
            return
        human = self.params.human
        queued, collected = self.humans.collect(pairs, gold=self._gold_items(routed))
        routed.human_queued = queued
        answered = {}
        for label in collected:
            routed.labels.append(label)
            answered.setdefault(label.pair_id, []).append(label)
        routed.human_pending = self.humans.pending([p.pair_id for p in pairs])
        missing = []  # escalated pairs without a human answer keep their machine label
        for pair in pairs:
            if pair.pair_id in answered:
                routed.final[pair.pair_id] = aggregate(answered[pair.pair_id])[pair.pair_id]
            elif pair.pair_id not in routed.final:
                missing.append(pair)
        if human.missing != SKIP:
            self.fallbacks[Labeler(human.missing)](missing, routed)

    def _gold_items(self, routed: Routed) -> dict[str, str]:
        """Known-answer items for human queues: pairs a verifier decided."""
        return {pid: lab.choice for pid, lab in routed.final.items() if lab.source == LabelSource.VERIFIER}


# Verifiers first (cheap and exact), then the critic, simulated annotators, humans (the docstring).
ORDER_OF_WORK = (Labeler.VERIFIER, Labeler.CRITIC, Labeler.SIMULATED, Labeler.HUMAN)
