"""Typed params: one dataclass per params.yaml section. Each field says what it does."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

EMBEDDED = "embedded"


def knob(default: Any, help: str) -> Any:
    """A params field with a default and a help line (shown by `prefpipe params`)."""
    if isinstance(default, (dict, list)):
        return field(default_factory=lambda: type(default)(default), metadata={"help": help})
    return field(default=default, metadata={"help": help})


@dataclass(frozen=True)
class RuntimeParams:
    threads: int = knob(2, "torch CPU threads per stage; size to free cores (oversubscription is slow)")
    precision: Literal["fp32", "bf16"] = knob("fp32", "autocast dtype for forward passes")

    def validate(self) -> str | None:
        return "threads must be >= 1" if self.threads < 1 else None


@dataclass(frozen=True)
class ModelParams:
    policy: str = knob(EMBEDDED, "'embedded' (tiny LM trained by the sft stage) or a local path / hub id")
    n_layer: int = knob(4, "embedded model: transformer blocks")
    n_embd: int = knob(128, "embedded model: hidden width")
    n_head: int = knob(4, "embedded model: attention heads")
    n_positions: int = knob(128, "embedded model: context length in tokens")
    vocab_size: int = knob(1024, "embedded tokenizer: BPE vocabulary size")

    def validate(self) -> str | None:
        if self.n_embd % self.n_head:
            return f"n_embd ({self.n_embd}) must be divisible by n_head ({self.n_head})"
        return None


@dataclass(frozen=True)
class DataParams:
    prompts: str = knob(EMBEDDED, "'embedded' (the default world) or a Parquet / JSONL / datasets folder")
    prompt_column: str = knob("prompt", "column holding the prompt text in your data")
    category_column: str = knob("category", "column holding the category (optional in your data)")
    heldout_fraction: float = knob(0.2, "share of prompts kept out of training for evaluation")

    def validate(self) -> str | None:
        if not 0.0 < self.heldout_fraction < 1.0:
            return f"heldout_fraction must be in (0, 1), got {self.heldout_fraction}"
        return None


@dataclass(frozen=True)
class WorldParams:
    max_operand: int = knob(20, "arithmetic operands are drawn from 0..max_operand")
    sft_examples: int = knob(12000, "SFT demonstrations sampled from the styled corpus")
    p_filler: float = knob(0.35, "SFT corpus: chance a response opens with filler ('Great question!')")
    p_restate: float = knob(0.2, "SFT corpus: chance a response restates the question")
    p_caveat: float = knob(0.25, "SFT corpus: chance of a needless caveat")
    p_closing: float = knob(0.2, "SFT corpus: chance of a filler closing ('Hope this helps!')")
    p_wrong: float = knob(0.15, "SFT corpus: chance the content is wrong (answer, code, topic)")
    p_comply_harmful: float = knob(0.4, "SFT corpus: chance a harmful request is complied with")
    p_refuse_benign: float = knob(0.25, "SFT corpus: chance a benign request is needlessly refused")

    def validate(self) -> str | None:
        for name in ("p_filler", "p_restate", "p_caveat", "p_closing", "p_wrong",
                     "p_comply_harmful", "p_refuse_benign"):
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                return f"{name} must be a probability in [0, 1], got {value}"
        return "max_operand must be >= 1" if self.max_operand < 1 else None


@dataclass(frozen=True)
class OptimParams:
    epochs: float = knob(1.0, "passes over the training data (fractions allowed)")
    batch_size: int = knob(32, "examples (or pairs) per optimizer step")
    lr: float = knob(1e-3, "peak learning rate (AdamW), linear warmup then cosine decay")
    warmup_steps: int = knob(20, "linear warmup steps")
    weight_decay: float = knob(0.0, "AdamW weight decay")
    max_grad_norm: float = knob(1.0, "gradient clipping norm")

    def validate(self) -> str | None:
        if self.epochs <= 0:
            return f"epochs must be > 0, got {self.epochs}"
        if self.batch_size < 1:
            return f"batch_size must be >= 1, got {self.batch_size}"
        return f"lr must be > 0, got {self.lr}" if self.lr <= 0 else None


@dataclass(frozen=True)
class SamplingParams:
    temperature: float = knob(1.0, "sampling temperature")
    top_k: int = knob(0, "top-k sampling (0 = off)")
    top_p: float = knob(1.0, "nucleus sampling mass (1.0 = off)")
    max_new_tokens: int = knob(48, "response length cap; unfinished responses count as malformed")
    batch_size: int = knob(64, "prompts per generation batch (KV cache on)")

    def validate(self) -> str | None:
        if self.temperature <= 0:
            return f"temperature must be > 0, got {self.temperature}"
        if not 0.0 < self.top_p <= 1.0:
            return f"top_p must be in (0, 1], got {self.top_p}"
        return "max_new_tokens must be >= 1" if self.max_new_tokens < 1 else None


@dataclass(frozen=True)
class GenerateParams:
    prompts: int = knob(2000, "training prompts to sample candidates for")
    candidates_per_prompt: int = knob(4, "responses sampled per prompt")
    pairs_per_prompt: int = knob(3, "pairs formed per prompt from distinct candidates")
    sampling: SamplingParams = field(default_factory=SamplingParams)

    def validate(self) -> str | None:
        if self.candidates_per_prompt < 2:
            return "candidates_per_prompt must be >= 2 to form pairs"
        max_pairs = self.candidates_per_prompt * (self.candidates_per_prompt - 1) // 2
        if not 1 <= self.pairs_per_prompt <= max_pairs:
            return f"pairs_per_prompt must be in 1..{max_pairs} for {self.candidates_per_prompt} candidates"
        return None


LABELERS = ("simulated", "verifier")


@dataclass(frozen=True)
class LabelParams:
    routing: dict[str, str] = knob(
        {"arithmetic": "verifier", "code": "verifier", "default": "simulated"},
        "category -> labeler ('simulated' annotators or 'verifier'); 'default' covers the rest",
    )
    annotators: int = knob(3, "simulated annotators (pairs are dealt round robin)")
    noise: float = knob(0.1, "simulated annotators: chance of a random label (lapse rate)")
    temperature: float = knob(0.5, "simulated annotators: Bradley-Terry temperature on gold scores")

    def validate(self) -> str | None:
        for category, labeler in self.routing.items():
            if labeler not in LABELERS:
                return (f"routing.{category}: unknown labeler '{labeler}' (available: "
                        f"{', '.join(LABELERS)}; human and critic labelers arrive with issue #4)")
        if "default" not in self.routing:
            return "routing must have a 'default' entry"
        if not 0.0 <= self.noise <= 1.0:
            return f"noise must be in [0, 1], got {self.noise}"
        return "annotators must be >= 1" if self.annotators < 1 else None


@dataclass(frozen=True)
class RewardParams:
    optim: OptimParams = field(default_factory=lambda: OptimParams(epochs=3.0, lr=5e-4))
    val_fraction: float = knob(0.15, "share of labeled pairs (by prompt) held out for accuracy")


@dataclass(frozen=True)
class DPOParams:
    beta: float = knob(0.1, "DPO temperature β (Rafailov et al. 2023); higher = closer to reference")
    label_smoothing: float = knob(0.0, "cDPO label noise ε (0 = plain DPO)")
    optim: OptimParams = field(
        default_factory=lambda: OptimParams(epochs=1.0, lr=5e-5, warmup_steps=10))

    def validate(self) -> str | None:
        if self.beta <= 0:
            return f"beta must be > 0, got {self.beta}"
        return None if 0.0 <= self.label_smoothing < 0.5 else "label_smoothing must be in [0, 0.5)"


@dataclass(frozen=True)
class PolicyParams:
    algorithm: Literal["dpo"] = knob("dpo", "policy optimiser (PPO and GRPO arrive with issue #3)")
    dpo: DPOParams = field(default_factory=DPOParams)


@dataclass(frozen=True)
class SFTParams:
    optim: OptimParams = field(
        default_factory=lambda: OptimParams(epochs=3.0, batch_size=64, lr=3e-3))


@dataclass(frozen=True)
class EvaluateParams:
    prompts: int = knob(600, "held-out prompts to evaluate on")
    sampling: SamplingParams = field(default_factory=SamplingParams)


@dataclass(frozen=True)
class StoreParams:
    path: str = knob("store/prefpipe.duckdb", "DuckDB file holding prompts, candidates, pairs, labels")
    lock_timeout_s: float = knob(60.0, "how long to retry when another process holds the file")


@dataclass(frozen=True)
class OrchestrationParams:
    retries: int = knob(0, "Prefect retries per stage")
    retry_delay_seconds: float = knob(10.0, "wait between retries")


@dataclass(frozen=True)
class Params:
    seed: int = knob(0, "global seed: same params + seed on CPU give byte-identical outputs")
    runtime: RuntimeParams = field(default_factory=RuntimeParams)
    model: ModelParams = field(default_factory=ModelParams)
    data: DataParams = field(default_factory=DataParams)
    world: WorldParams = field(default_factory=WorldParams)
    sft: SFTParams = field(default_factory=SFTParams)
    generate: GenerateParams = field(default_factory=GenerateParams)
    label: LabelParams = field(default_factory=LabelParams)
    reward: RewardParams = field(default_factory=RewardParams)
    policy: PolicyParams = field(default_factory=PolicyParams)
    evaluate: EvaluateParams = field(default_factory=EvaluateParams)
    store: StoreParams = field(default_factory=StoreParams)
    orchestration: OrchestrationParams = field(default_factory=OrchestrationParams)

    @property
    def embedded_model(self) -> bool:
        return self.model.policy == EMBEDDED

    @property
    def embedded_data(self) -> bool:
        return self.data.prompts == EMBEDDED
