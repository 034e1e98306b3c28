"""Route each pair to a labeler by category, escalate doubtful machine labels, and pick the label
each pair trains on.

Order of work: verifiers first (cheap and exact), then the critic (including verifier-undecided
pairs), then simulated annotators, then humans (their queues get the human-routed and escalated
pairs; labels already submitted are collected, missing ones fall back as `human.missing` says)."""
from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from prefpipe.label.agreement import aggregate
from prefpipe.label.simulated import pair_rng, simulated_label
from prefpipe.label.types import Label, PairToLabel
from prefpipe.world.prompts import WorldPrompt


def labeler_for(category: str, routing: Mapping[str, str]) -> str:
    return routing.get(category, routing["default"])


@dataclass
class Routed:
    """The outcome of routing: every individual label, and the one label each pair trains on."""
    final: dict[str, Label] = field(default_factory=dict)
    labels: list[Label] = field(default_factory=list)
    critic_judgments: list[dict] = field(default_factory=list)
    escalated: list[str] = field(default_factory=list)
    human_queued: int = 0
    human_pending: int = 0


class LabelRouter:
    """Runs the labelers `params.routing` asks for. Labelers are injected so tests can pick them:
    `verifier` (prefpipe.label.verifiers.Verifier), `critic` (a callable pairs -> CritiqueResult),
    `humans` (prefpipe.label.human_queue.HumanQueue)."""

    def __init__(self, params, seed: int, world: Mapping[str, WorldPrompt | None], verifier=None,
                 critic=None, humans=None):
        self.params, self.seed, self.world = params, seed, world
        self.verifier, self.critic, self.humans = verifier, critic, humans

    def run(self, pairs: Sequence[PairToLabel]) -> Routed:
        routed = Routed()
        groups: dict[str, list[PairToLabel]] = defaultdict(list)
        for pair in pairs:
            groups[labeler_for(pair.category, self.params.routing)].append(pair)
        escalate_to = self.params.escalate.to
        to_escalate: list[PairToLabel] = []

        verified = self._verify(groups.pop("verifier", []), routed)
        undecided = [p for p in verified if p.pair_id not in routed.final]
        groups[self.params.verifier.undecided].extend(undecided)
        if escalate_to and self.params.escalate.verifier_disagreement:
            decided = [p for p in verified if p.pair_id in routed.final]
            second = self._critique(decided, routed, decide=False)
            to_escalate += [p for p in decided if second[p.pair_id].choice != routed.final[p.pair_id].choice]

        critic_labels = self._critique(groups.pop("critic", []), routed, decide=True)
        threshold = self.params.escalate.critic_confidence_below
        if escalate_to and threshold > 0:
            to_escalate += [p for p in self._pairs(critic_labels, pairs)
                            if critic_labels[p.pair_id].confidence < threshold]
        routed.escalated = sorted({p.pair_id for p in to_escalate})
        if escalate_to:
            groups[escalate_to].extend(to_escalate)

        self._simulate(groups.pop("simulated", []), routed)
        self._ask_humans(groups.pop("human", []), routed)
        return routed

    @staticmethod
    def _pairs(labels: Mapping[str, Label], pairs: Sequence[PairToLabel]) -> list[PairToLabel]:
        return [p for p in pairs if p.pair_id in labels]

    def _verify(self, pairs: list[PairToLabel], routed: Routed) -> list[PairToLabel]:
        if not pairs:
            return []
        unknown = sorted({p.category for p in pairs if self.world.get(p.prompt_id) is None})
        if unknown:
            raise ValueError(f"categories {unknown} are routed to the verifier, which needs reference "
                             "answers and tests (the embedded world's); route them to 'critic' or 'human'")
        for label in self.verifier.label(pairs, self.world):
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
                                 "annotators, who need the embedded world's gold answers; route it to "
                                 "'critic' or 'human' instead")
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
        if human.missing == "critic":
            self._critique(missing, routed, decide=True)
        elif human.missing == "simulated":
            self._simulate(missing, routed)

    def _gold_items(self, routed: Routed) -> dict[str, str]:
        """Known-answer items for human queues: pairs a verifier decided."""
        return {pid: lab.choice for pid, lab in routed.final.items() if lab.source == "verifier"}
