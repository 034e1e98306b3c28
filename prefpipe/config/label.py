"""Params of the label stage: routing, escalation, and each labeler's knobs."""
from __future__ import annotations

from dataclasses import dataclass, field

from prefpipe.config.critic import CriticParams
from prefpipe.config.knobs import knob
from prefpipe.vocab import Format, Labeler, LabelSource, literal

FormatName = literal(Format)
SourceName = literal(LabelSource)
NO_ESCALATION = ""
SKIP = "skip"  # human.missing: leave a human-routed pair without a label
# Labelers that may take over another labeler's pairs (they need nothing the pair lacks).
ESCALATION_TARGETS = (NO_ESCALATION, Labeler.HUMAN.value, Labeler.SIMULATED.value)
UNDECIDED_TARGETS = (Labeler.CRITIC.value, Labeler.HUMAN.value, Labeler.SIMULATED.value)
MISSING_TARGETS = (Labeler.CRITIC.value, Labeler.SIMULATED.value, SKIP)
# Labelers that read the embedded world's hidden facts, and which: with your own prompts
# (data.prompts not 'embedded') they have nothing to work with. The one source of these messages.
# (The verifier is not one: it checks your prompts by the answers or tests they carry, `needs_reference`.)
NEEDS_WORLD = {Labeler.SIMULATED.value: "gold answers"}
USE_INSTEAD = "'critic' (with label.critic.judge 'http' or 'local') or 'human'"
RULE_JUDGE_NEEDS_WORLD = ("the rule judge reads the embedded world's parse of each response, which your "
                          "prompts lack; set label.critic.judge to 'http' or 'local' (an OpenAI-compatible "
                          "server or a model folder)")


def needs_world(labeler: str) -> str:
    """Why `labeler` (one of NEEDS_WORLD) cannot label your own prompts."""
    return f"the {labeler} labeler needs the embedded world's {NEEDS_WORLD[labeler]}, which your prompts lack"


def needs_reference(answer_column: str, tests_column: str) -> str:
    """What the verifier (and GRPO's rewards) need of each of your own prompts."""
    return (f"a reference answer (column data.answer_column: '{answer_column}') or tests (column "
            f"data.tests_column: '{tests_column}')")


@dataclass(frozen=True)
class EscalationParams:
    to: str = knob(NO_ESCALATION, "where doubtful machine labels go for a second opinion: '' (off), "
                                  "'human' or 'simulated'; the escalated label replaces the machine "
                                  "label for training")
    critic_confidence_below: float = knob(0.0, "escalate critic labels whose confidence is below this")
    verifier_disagreement: bool = knob(False, "also ask the critic on verifier-routed pairs and escalate "
                                              "the pairs where critic and verifier disagree")

    def validate(self) -> str | None:
        if self.to not in ESCALATION_TARGETS:
            return f"to must be one of {list(ESCALATION_TARGETS)}, got '{self.to}'"
        if not 0.0 <= self.critic_confidence_below <= 1.0:
            return f"critic_confidence_below must be in [0, 1], got {self.critic_confidence_below}"
        return None


@dataclass(frozen=True)
class VerifierParams:
    undecided: str = knob(Labeler.CRITIC.value, "labeler for verifier-routed pairs whose two responses "
                                                "verify alike")
    timeout_s: float = knob(5.0, "code sandbox: wall-clock limit per candidate (the process group is killed)")
    cpu_s: float = knob(3.0, "code sandbox: CPU-seconds limit per candidate")
    memory_mb: int = knob(256, "code sandbox: address-space limit per candidate")
    workers: int = knob(2, "code sandbox: candidates run in parallel")

    def validate(self) -> str | None:
        if self.undecided not in UNDECIDED_TARGETS:
            return f"undecided must be {_one_of(UNDECIDED_TARGETS)}, got '{self.undecided}'"
        if self.timeout_s <= 0 or self.cpu_s <= 0 or self.memory_mb < 32 or self.workers < 1:
            return "timeout_s and cpu_s must be > 0, memory_mb >= 32 and workers >= 1"
        return None


@dataclass(frozen=True)
class HumanParams:
    annotators: list[str] = knob([], "annotator ids who get queues (add each with `prefpipe label "
                                     "annotators add ID`, which prints their sign-in token)")
    overlap: int = knob(2, "annotators per pair (>= 2 gives inter-annotator agreement)")
    gold_every: int = knob(10, "a known-answer (gold) item every N tasks in each queue (0 = none)")
    wait_s: float = knob(0.0, "`prefpipe run` pauses the flow up to this long for pending human labels "
                              "(0 = take the labels present)")
    missing: str = knob(Labeler.CRITIC.value, "labeler for human-routed pairs still without a human "
                                              "label ('critic', 'simulated' or 'skip')")

    def validate(self) -> str | None:
        if self.overlap < 1 or self.gold_every < 0 or self.wait_s < 0:
            return "overlap must be >= 1, gold_every and wait_s >= 0"
        if self.missing not in MISSING_TARGETS:
            return f"missing must be {_one_of(MISSING_TARGETS)}, got '{self.missing}'"
        return None


@dataclass(frozen=True)
class SimulatedParams:
    annotators: int = knob(3, "simulated annotators in the pool")
    overlap: int = knob(3, "simulated annotators per pair (>= 2 gives inter-annotator agreement)")
    noise: float = knob(0.1, "chance of a random label (lapse rate)")
    temperature: float = knob(0.5, "Bradley-Terry temperature on gold scores")
    length_bias: float = knob(0.0, "extra score per word (> 0 = they favour long answers, and so will "
                                   "the reward model)")

    def validate(self) -> str | None:
        if not 1 <= self.overlap <= self.annotators:
            return f"overlap must be in 1..annotators ({self.annotators}), got {self.overlap}"
        if not 0.0 <= self.noise <= 1.0:
            return f"noise must be in [0, 1], got {self.noise}"
        return "temperature must be > 0" if self.temperature <= 0 else None


@dataclass(frozen=True)
class ImportSpec:
    path: str = knob("", "a preference file to train on too; keep it under data/inputs so DVC tracks it")
    format: FormatName = knob(Format.TRL.value, "its format")
    source: SourceName = knob(LabelSource.IMPORT.value, "its labels' source ('import': counted as no "
                                                        "labeler's, and never as people's answers)")
    category_column: str = knob("", "column holding each prompt's category ('' = 'imported')")

    def validate(self) -> str | None:
        return "path is required" if not self.path else None


@dataclass(frozen=True)
class ImportingParams:
    max_chars: int = knob(20000, "longest prompt or response an import takes, in characters; a longer "
                                 "one is a bad row (`prefpipe label import --truncate` cuts it instead)")

    def validate(self) -> str | None:
        return f"max_chars must be >= 1, got {self.max_chars}" if self.max_chars < 1 else None


@dataclass(frozen=True)
class LabelParams:
    routing: dict[str, str] = knob(
        {"arithmetic": "verifier", "code": "verifier", "harmful": "simulated", "default": "critic"},
        f"category -> labeler ({' | '.join(Labeler.values())}); 'default' covers the rest",
    )
    escalate: EscalationParams = field(default_factory=EscalationParams)
    critic: CriticParams = field(default_factory=CriticParams)
    verifier: VerifierParams = field(default_factory=VerifierParams)
    human: HumanParams = field(default_factory=HumanParams)
    simulated: SimulatedParams = field(default_factory=SimulatedParams)
    imports: list[ImportSpec] = knob([], "preference files (TRL, HH-RLHF, UltraFeedback) imported into the "
                                         "store and added to the preferences the stage writes")
    importing: ImportingParams = field(default_factory=ImportingParams)

    def validate(self) -> str | None:
        for category, labeler in self.routing.items():
            if labeler not in Labeler.values():
                return (f"routing.{category}: unknown labeler '{labeler}' "
                        f"(available: {', '.join(Labeler.values())})")
        if "default" not in self.routing:
            return "routing must have a 'default' entry"
        uses_humans = Labeler.HUMAN in self.routing.values() or self.escalate.to == Labeler.HUMAN
        if uses_humans and len(self.human.annotators) < self.human.overlap:
            return (f"human.annotators lists {len(self.human.annotators)} annotators but human.overlap is "
                    f"{self.human.overlap}; add annotators or lower the overlap")
        return None

    def in_use(self, categories: set[str]) -> dict[str, str]:
        """Labeler -> the params key that first brings it in, for pairs of these `categories`:
        the routing, then the hand-offs (verifier.undecided, escalate.to, human.missing)."""
        used: dict[str, str] = {}
        for category in sorted(categories):
            key = category if category in self.routing else "default"
            used.setdefault(self.routing[key], f"label.routing.{key}")
        esc, size = self.escalate, -1
        while size != len(used):  # hand-offs may bring in labelers that hand off further
            size = len(used)
            if Labeler.VERIFIER in used:
                used.setdefault(self.verifier.undecided, "label.verifier.undecided")
                if esc.to and esc.verifier_disagreement:
                    used.setdefault(Labeler.CRITIC.value, "label.escalate.verifier_disagreement")
                    used.setdefault(esc.to, "label.escalate.to")
            if esc.to and esc.critic_confidence_below > 0 and Labeler.CRITIC in used:
                used.setdefault(esc.to, "label.escalate.to")
            if Labeler.HUMAN in used and self.human.missing != SKIP:
                used.setdefault(self.human.missing, "label.human.missing")
        return used


def _one_of(names: tuple[str, ...]) -> str:
    """'a, b or c'."""
    return f"{', '.join(names[:-1])} or {names[-1]}"
