"""Subprocess worker for the sharded-training test: trains one tiny model, saves its whole weights.

python tests/train/fsdp_worker.py KINDS OUT   (KINDS: comma-separated sft, reward, dpo)
Run directly (1 process) or under `accelerate launch` with an FSDP config. Unlike worker.py it
saves `Runtime.full_state_dict` (a collective every process joins: under FSDP the main process
holds only its shard of each parameter) and records how much of the model this process holds,
and what a stage's save (`save_model` with that state dict) reloads as. Under FSDP it also records
the error PPO stops with before training.
Several kinds in one run share one start-up (imports, process group): the test stays short.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch
from accelerate.utils import DistributedType
from safetensors.torch import load_file

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import tiny  # noqa: E402

from prefpipe.errors import ConfigError  # noqa: E402
from prefpipe.models.io import load_causal_lm, load_reward_model, save_model  # noqa: E402
from prefpipe.models.policy_value import PolicyWithValue  # noqa: E402
from prefpipe.train.checkpoint import Checkpointer  # noqa: E402
from prefpipe.train.determinism import use_deterministic_kernels  # noqa: E402
from prefpipe.train.distributed import Runtime  # noqa: E402
from prefpipe.train.loop import TrainContext  # noqa: E402


def train(kind: str, tok, context: TrainContext, scratch: Path) -> tuple[torch.nn.Module, list[dict]]:
    """The same models, data and hyperparameters as worker.py's supervised kinds; the DPO
    reference is loaded from a saved folder, as the stage loads it (a frozen model that no
    engine runs: under ZeRO-3 it must load whole)."""
    if kind == "reward":
        from prefpipe.train.reward import train_reward_model

        model = tiny.reward_model(tok)
        params = tiny.reward_params(center_coef=0.01)  # see worker.py: ln_f.bias needs a real gradient
        return model, train_reward_model(model, tok, tiny.pairs(), params, 64, 0, context)
    if kind == "sft":
        from prefpipe.train.sft import train_sft

        model = tiny.policy_lm(tok)
        examples = [{"prompt": p["prompt"], "response": p["chosen"]} for p in tiny.pairs()]
        return model, train_sft(model, tok, examples, tiny.reward_params().optim, 64, 0, context)
    if kind == "dpo":
        from prefpipe.train.dpo import reference_logprobs, train_dpo

        model = tiny.policy_lm(tok)
        if context.runtime.is_main:  # transformers saves nothing on the other processes
            tiny.policy_lm(tok).save_pretrained(scratch)
        context.runtime.barrier()
        ref_c, ref_r = reference_logprobs(load_causal_lm(scratch), tok, tiny.pairs(), 64)
        return model, train_dpo(model, tok, tiny.pairs(), ref_c, ref_r, tiny.dpo_params(), 64, 0, context)
    raise SystemExit(f"unknown kind {kind}")


def held_share(model: torch.nn.Module) -> float:
    """Elements of the parameters this process stores / elements of the whole model.

    FSDP2 parameters are DTensors (`to_local` is the shard); ZeRO-3 keeps the shard in `ds_tensor`
    and the whole size in `ds_numel`."""
    def held(p: torch.nn.Parameter) -> tuple[int, int]:
        if hasattr(p, "ds_tensor"):
            return p.ds_tensor.numel(), p.ds_numel
        return (p.to_local() if hasattr(p, "to_local") else p).numel(), p.numel()

    local, whole = map(sum, zip(*(held(p) for p in model.parameters())))
    return local / whole


def saved(kind: str, model: torch.nn.Module, tok, state: dict, runtime: Runtime, folder: Path) -> dict:
    """What the stages do: the main process saves `state` (every process gathered it); the folder
    holds `files` (the weights file `tensors`) and reloads as `state_dict`. With one process
    `plain_bytes`: the bytes are those of a save without a state dict."""
    if not runtime.is_main:
        return {}
    save_model(model, tok, folder / kind, state_dict=state)
    reload = load_reward_model if kind == "reward" else load_causal_lm
    result = {"state_dict": reload(folder / kind).state_dict(),
              "files": sorted(p.name for p in (folder / kind).iterdir()),
              "tensors": sorted(load_file(folder / kind / "model.safetensors"))}
    if runtime.world_size == 1:
        save_model(model, tok, folder / f"{kind}_plain")
        result["plain_bytes"] = all(p.read_bytes() == (folder / kind / p.name).read_bytes()
                                    for p in (folder / f"{kind}_plain").iterdir())
    return result


def ppo_refusal(tok, context: TrainContext) -> str:
    """The error PPO stops with under FSDP (its sampling does not run on sharded weights)."""
    from prefpipe.train.ppo import train_ppo

    try:
        train_ppo(PolicyWithValue(tiny.policy_lm(tok)), None, lambda r: torch.zeros(len(r.finished)),
                  tok, tiny.prompts(), tiny.ppo_params(iterations=1), 64, 0, context)
    except ConfigError as error:
        return str(error)
    return "trained"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("kinds")
    parser.add_argument("out")
    args = parser.parse_args()
    torch.set_num_threads(1)
    use_deterministic_kernels(warn_only=False)
    runtime = Runtime()
    tok = tiny.tokenizer()
    results, folder = {}, Path(args.out).parent
    for kind in args.kinds.split(","):
        context = TrainContext(runtime, Checkpointer(None, 0))
        model, history = train(kind, tok, context, folder / "reference")
        state = runtime.full_state_dict(model)
        results[kind] = {"state": state, "history": history, "held_share": held_share(model),
                         "saved": saved(kind, model, tok, state, runtime, folder / "saved")}
    fsdp = runtime.accelerator.distributed_type == DistributedType.FSDP
    refusal = ppo_refusal(tok, TrainContext(runtime, Checkpointer(None, 0))) if fsdp else None
    if runtime.is_main:
        torch.save({"kinds": results, "world_size": runtime.world_size, "ppo_refusal": refusal,
                    "distributed_type": str(runtime.accelerator.distributed_type)}, args.out)


if __name__ == "__main__":
    main()
