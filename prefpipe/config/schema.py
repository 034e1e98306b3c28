"""Typed params: one dataclass per params.yaml section. Each field says what it does."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from prefpipe.config.artifacts import ArtifactsParams
from prefpipe.config.data import EMBEDDED, DataParams
from prefpipe.config.evaluate import EvaluateParams
from prefpipe.config.knobs import knob
from prefpipe.config.label import LabelParams
from prefpipe.config.optim import OptimParams, RLOptimParams
from prefpipe.config.rounds import RoundsParams
from prefpipe.config.sampling import SamplingParams
from prefpipe.vocab import DPOVariant, PromptFormat, literal

PromptFormatName = literal(PromptFormat)


@dataclass(frozen=True)
class RuntimeParams:
    threads: int = knob(2, "torch CPU threads per stage; size to free cores (oversubscription is slow)")
    precision: Literal["fp32", "bf16", "auto"] = knob(
        "auto", "autocast dtype of training forward passes: fp32 | bf16 | auto (bf16 where the hardware "
        "has bf16 matrix units: CUDA with bf16, a CPU with AMX; else fp32)")
    processes: int = knob(1, "training processes; > 1 runs training stages under `accelerate launch`")
    accelerate_config: str = knob("", "accelerate config file for training stages (see infra/accelerate)")
    checkpoint_every: int = knob(20, "optimizer steps between resumable checkpoints (0 = none)")
    checkpoint_dir: str = knob("checkpoints", "where resumable checkpoints live (not a DVC output)")
    length_groups: int = knob(4, "SFT, reward and DPO-family steps run each batch's rows as this many "
                                 "length-sorted parts, each padded to its own longest row: the same "
                                 "loss per step, less padding computed (parts under ~16 rows can "
                                 "cost more than they save: set 1 for small batches)")

    def validate(self) -> str | None:
        if self.threads < 1 or self.processes < 1:
            return "threads and processes must be >= 1"
        if self.length_groups < 1:
            return f"length_groups must be >= 1, got {self.length_groups}"
        return "checkpoint_every must be >= 0" if self.checkpoint_every < 0 else None


@dataclass(frozen=True)
class ModelParams:
    policy: str = knob(EMBEDDED, "'embedded' (tiny LM trained by the sft stage) or a local path / hub id")
    n_layer: int = knob(4, "embedded model: transformer blocks")
    n_embd: int = knob(128, "embedded model: hidden width")
    n_head: int = knob(4, "embedded model: attention heads")
    n_positions: int = knob(128, "context length of the embedded model, and the token cap per prompt+"
                                 "response in every stage (your own model: at most its positions)")
    vocab_size: int = knob(1024, "embedded tokenizer: BPE vocabulary size")
    prompt_format: PromptFormatName = knob(
        PromptFormat.AUTO.value, "how a prompt becomes model input in every stage: auto (the "
        "tokenizer's chat template if it has one, else plain), chat_template, plain "
        "('User: {prompt}\\nAssistant:'), raw (the prompt text as given, nothing added)")

    def validate(self) -> str | None:
        if self.n_embd % self.n_head:
            return f"n_embd ({self.n_embd}) must be divisible by n_head ({self.n_head})"
        return None


@dataclass(frozen=True)
class WorldParams:
    max_operand: int = knob(9, "arithmetic operands are drawn from 0..max_operand")
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


def _dropout_problem(dropout: float | None) -> str | None:
    if dropout is not None and not 0.0 <= dropout < 1.0:
        return f"dropout must be null or in [0, 1), got {dropout}"
    return None


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


@dataclass(frozen=True)
class RewardParams:
    model: str = knob("", "reward-model init: '' = the SFT backbone with a fresh scalar head, or any "
                          "AutoModelForSequenceClassification path / hub id sharing the policy's tokenizer")
    optim: OptimParams = field(default_factory=lambda: OptimParams(epochs=2.0, lr=5e-4))
    val_fraction: float = knob(0.15, "share of labeled pairs (by prompt) held out for accuracy")
    margin_scale: float = knob(0.0, "Bradley-Terry margin: a pair of label confidence c needs a gap "
                                    "of margin_scale·c (Llama 2); 0 = no margin")
    center_coef: float = knob(0.0, "reward centering c·(r_c + r_r)² (Eisenstein et al. 2023); 0 = off")
    dropout: float | None = knob(0.0, "dropout while training (every torch.nn.Dropout of the model); "
                                      "0.0 = off (as TRL's RewardTrainer); null = the model's own (the "
                                      "embedded GPT-2's is 0.1)")

    def validate(self) -> str | None:
        return _dropout_problem(self.dropout)


DPOLossName = literal(DPOVariant)  # one object each in prefpipe.losses.dpo_variants.DPO_VARIANTS


@dataclass(frozen=True)
class DPOParams:
    loss: DPOLossName = knob(
        DPOVariant.SIGMOID.value, "sigmoid (DPO; cDPO with label_smoothing), robust (rDPO), ipo, "
                                  "hinge (SLiC), simpo (reference-free, length-normalised)")
    beta: float = knob(0.1, "DPO temperature β (Rafailov et al. 2023); higher = closer to reference")
    label_smoothing: float = knob(0.0, "cDPO / robust DPO label-flip rate ε (0 = plain DPO)")
    simpo_gamma: float = knob(0.5, "SimPO target reward margin γ")
    dropout: float | None = knob(0.0, "dropout while training (every torch.nn.Dropout of the policy); "
                                      "0 = off, so policy and reference log-probs compare on equal "
                                      "terms; null = the model's own")
    optim: OptimParams = field(
        default_factory=lambda: OptimParams(epochs=1.0, lr=5e-5, warmup_steps=10))

    def validate(self) -> str | None:
        if self.beta <= 0:
            return f"beta must be > 0, got {self.beta}"
        if _dropout_problem(self.dropout):
            return _dropout_problem(self.dropout)
        return None if 0.0 <= self.label_smoothing < 0.5 else "label_smoothing must be in [0, 0.5)"


@dataclass(frozen=True)
class LoRAParams:
    rank: int = knob(0, "LoRA rank; 0 = full fine-tuning. With LoRA the reference is the policy with "
                        "its adapters disabled, so no second copy of the model is held")
    alpha: float = knob(16.0, "LoRA scaling α (updates are scaled by α / rank)")
    dropout: float = knob(0.0, "dropout on the LoRA branch")
    target_modules: list[str] = knob([], "module names to adapt; [] = peft's default for the model type")

    def validate(self) -> str | None:
        return "rank must be >= 0" if self.rank < 0 else None


@dataclass(frozen=True)
class KLControlParams:
    beta: float = knob(0.1, "KL coefficient β in reward - β·KL (the initial value when adaptive)")
    adaptive: bool = knob(True, "steer β toward the KL target (Ziegler et al. 2019); false = fixed β")
    target: float = knob(1.5, "KL budget in nats per response that the adaptive controller holds")
    horizon: int = knob(512, "controller horizon in rollouts: larger = slower β changes")
    estimator: Literal["k1", "k2", "k3"] = knob("k1", "per-token KL estimator in the reward penalty")

    def validate(self) -> str | None:
        if self.beta < 0:
            return f"beta must be >= 0, got {self.beta}"
        if self.adaptive and (self.beta <= 0 or self.target <= 0 or self.horizon < 1):
            return "adaptive KL needs beta > 0 (it scales β), target > 0 and horizon >= 1"
        return None


@dataclass(frozen=True)
class PPOParams:
    iterations: int = knob(120, "rollout-then-update iterations")
    rollout_prompts: int = knob(64, "training prompts sampled (one response each) per iteration")
    epochs: int = knob(2, "optimisation passes over each rollout batch")
    minibatch_size: int = knob(32, "rollouts per optimizer step")
    clip_range: float = knob(0.2, "policy ratio clip ε")
    value_clip_range: float = knob(0.2, "value clip: V may move at most this far from its rollout value")
    value_coef: float = knob(0.1, "weight of the value loss (the value head shares the policy backbone)")
    gamma: float = knob(1.0, "GAE discount γ")
    lam: float = knob(0.95, "GAE λ")
    normalize_reward: bool = knob(True, "standardise reward-model scores by their running mean and std")
    reward_clip: float = knob(5.0, "clip normalised scores to ±this")
    missing_eos_penalty: float = knob(2.0, "subtracted from the score of a response that never ends")
    kl: KLControlParams = field(default_factory=KLControlParams)
    optim: RLOptimParams = field(default_factory=lambda: RLOptimParams(lr=5e-5))
    sampling: SamplingParams = field(default_factory=SamplingParams)

    def validate(self) -> str | None:
        if min(self.iterations, self.rollout_prompts, self.epochs, self.minibatch_size) < 1:
            return "iterations, rollout_prompts, epochs and minibatch_size must be >= 1"
        return None if 0 < self.lam <= 1 and 0 < self.gamma <= 1 else "gamma and lam must be in (0, 1]"


@dataclass(frozen=True)
class GRPOParams:
    iterations: int = knob(300, "sample-then-update iterations")
    prompts_per_iteration: int = knob(16, "verifiable training prompts per iteration")
    group_size: int = knob(8, "samples per prompt (G); advantages are normalised within each group")
    epochs: int = knob(2, "optimisation passes over each batch of groups (1 = strictly on-policy)")
    minibatch_size: int = knob(64, "samples per optimizer step")
    clip_range: float = knob(0.2, "policy ratio clip ε")
    kl_beta: float = knob(0.04, "weight of the k3 KL-to-reference term in the loss")
    categories: list[str] = knob(["arithmetic", "code"], "prompt categories with a verifier to train on")
    optim: RLOptimParams = field(default_factory=lambda: RLOptimParams(lr=3e-4))
    sampling: SamplingParams = field(default_factory=SamplingParams)

    def validate(self) -> str | None:
        if self.group_size < 2:
            return "group_size must be >= 2 (advantages compare samples within a group)"
        if not self.categories:
            return "categories must name at least one verifiable category"
        return None


@dataclass(frozen=True)
class PolicyParams:
    algorithm: Literal["dpo", "ppo", "grpo"] = knob(
        "dpo", "dpo (from the pairs), ppo (against the reward model), grpo (verifier rewards)")
    lora: LoRAParams = field(default_factory=LoRAParams)
    dpo: DPOParams = field(default_factory=DPOParams)
    ppo: PPOParams = field(default_factory=PPOParams)
    grpo: GRPOParams = field(default_factory=GRPOParams)


@dataclass(frozen=True)
class SFTParams:
    optim: OptimParams = field(
        default_factory=lambda: OptimParams(epochs=3.0, batch_size=64, lr=3e-3))
    dropout: float | None = knob(None, "dropout while training (every torch.nn.Dropout of the model); "
                                       "null = the model's own (the embedded GPT-2's is 0.1)")

    def validate(self) -> str | None:
        return _dropout_problem(self.dropout)


@dataclass(frozen=True)
class StoreParams:
    path: str = knob("store/prefpipe.duckdb", "DuckDB file holding prompts, candidates, pairs, labels")
    lock_timeout_s: float = knob(60.0, "how long to retry when another process holds the file")


@dataclass(frozen=True)
class OrchestrationParams:
    retries: int = knob(0, "Prefect retries per stage")
    retry_delay_seconds: float = knob(10.0, "wait between retries")
    wait_for_workspace_s: float = knob(0.0, "when another run holds the workspace: wait this long "
                                            "for it, then refuse (0 = refuse at once)")
    work_pools: dict[str, str] = knob({}, "stage -> the Prefect work pool a worker runs it from (e.g. "
                                          "{train_policy: gpu}; flows/dispatch.py); others run in the flow")
    dispatch_timeout_s: float = knob(600.0, "how long a stage sent to a work pool waits for a worker "
                                            "to start it before the run fails")

    def validate(self) -> str | None:
        if self.wait_for_workspace_s < 0:
            return "wait_for_workspace_s must be >= 0"
        unnamed = [stage for stage, pool in self.work_pools.items() if not pool.strip()]
        if unnamed:
            return f"work_pools.{unnamed[0]}: name a work pool (or leave the stage out to run it in the flow)"
        return "dispatch_timeout_s must be > 0" if self.dispatch_timeout_s <= 0 else None


@dataclass(frozen=True)
class Params:
    seed: int = knob(0, "global seed: same params + seed on CPU give byte-identical outputs")
    runtime: RuntimeParams = field(default_factory=RuntimeParams)
    model: ModelParams = field(default_factory=ModelParams)
    data: DataParams = field(default_factory=DataParams)
    world: WorldParams = field(default_factory=WorldParams)
    sft: SFTParams = field(default_factory=SFTParams)
    generate: GenerateParams = field(default_factory=GenerateParams)
    rounds: RoundsParams = field(default_factory=RoundsParams)
    label: LabelParams = field(default_factory=LabelParams)
    reward: RewardParams = field(default_factory=RewardParams)
    policy: PolicyParams = field(default_factory=PolicyParams)
    evaluate: EvaluateParams = field(default_factory=EvaluateParams)
    store: StoreParams = field(default_factory=StoreParams)
    artifacts: ArtifactsParams = field(default_factory=ArtifactsParams)
    orchestration: OrchestrationParams = field(default_factory=OrchestrationParams)

    @property
    def embedded_model(self) -> bool:
        return self.model.policy == EMBEDDED

    @property
    def embedded_data(self) -> bool:
        return self.data.prompts == EMBEDDED
