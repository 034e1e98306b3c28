"""runtime.precision 'auto': bf16 where the hardware has bf16 matrix units (CUDA, AMX), fp32
elsewhere (AVX512-BF16 alone included: slower than fp32 there); the
explicit choices stay as given, and the training context resolves 'auto' once."""
from __future__ import annotations

import logging

import pytest
import torch

from prefpipe.train.common import autocast
from prefpipe.train.loop import TrainContext
from prefpipe.train.precision import attention_for, cpu_flags, native_bf16, resolve_precision
from tests.train import tiny

ZEN4 = frozenset({"fpu", "avx2", "avx512f", "avx512_bf16"})
SAPPHIRE_RAPIDS = frozenset({"avx2", "avx512f", "amx_tile", "amx_bf16"})
SKYLAKE = frozenset({"avx2", "avx512f", "avx512bw"})


@pytest.mark.parametrize(("flags", "expected"), [(ZEN4, "fp32"), (SAPPHIRE_RAPIDS, "bf16"),
                                                 (SKYLAKE, "fp32"), (frozenset(), "fp32")])
def test_auto_on_cpu_follows_the_bf16_flags(flags, expected):
    assert resolve_precision("auto", "cpu", flags=flags) == expected


@pytest.mark.parametrize(("cuda_bf16", "expected"), [(True, "bf16"), (False, "fp32")])
def test_auto_on_cuda_follows_the_device(cuda_bf16, expected):
    assert resolve_precision("auto", "cuda", cuda_bf16=cuda_bf16) == expected


def test_auto_elsewhere_is_fp32():
    assert resolve_precision("auto", "mps", flags=ZEN4, cuda_bf16=True) == "fp32"


@pytest.mark.parametrize("requested", ["fp32", "bf16"])
def test_explicit_precision_is_kept_whatever_the_hardware(requested):
    assert resolve_precision(requested, "cpu", flags=frozenset()) == requested
    assert resolve_precision(requested, "cpu", flags=ZEN4) == requested


def test_auto_logs_the_choice_and_why(caplog):
    with caplog.at_level(logging.INFO, logger="prefpipe"):
        resolve_precision("auto", "cpu", flags=SAPPHIRE_RAPIDS)
        resolve_precision("auto", "cpu", flags=SKYLAKE)
        resolve_precision("auto", "cpu", flags=ZEN4)
    assert "auto -> bf16 (CPU has amx_bf16)" in caplog.text
    assert "auto -> fp32 (CPU has no amx_bf16)" in caplog.text
    assert "auto -> fp32 (CPU has avx512_bf16 but no amx_bf16: bf16 autocast ran slower" in caplog.text


def test_the_reason_names_the_flags_found():
    assert native_bf16("cpu", flags=ZEN4 | SAPPHIRE_RAPIDS) == (True, "CPU has amx_bf16")


def test_unknown_precision_is_refused():
    with pytest.raises(ValueError, match="fp32, bf16 or auto"):
        resolve_precision("fp16", "cpu")
    with pytest.raises(ValueError, match="resolved precision"):
        autocast("auto")


def test_this_machine_resolves_to_one_of_the_two():
    chosen = resolve_precision("auto", "cpu")
    assert chosen in ("fp32", "bf16")
    assert chosen == ("bf16" if "amx_bf16" in cpu_flags() else "fp32")
    assert isinstance(cpu_flags(), frozenset) and cpu_flags()
    if torch.cuda.is_available():
        assert resolve_precision("auto", "cuda") == ("bf16" if torch.cuda.is_bf16_supported() else "fp32")


def test_the_training_context_resolves_auto():
    context = TrainContext(precision="auto")
    assert context.precision == resolve_precision("auto", context.runtime.device.type)
    assert TrainContext(precision="bf16").precision == "bf16"


@pytest.mark.parametrize(("precision", "device_type", "inside"), [
    ("bf16", "cpu", "eager"), ("fp32", "cpu", "sdpa"), ("bf16", "cuda", "sdpa")])
def test_bf16_on_a_cpu_trains_with_eager_attention_and_restores_the_models_own(precision, device_type,
                                                                                inside):
    model = tiny.policy_lm(tiny.tokenizer())
    assert model.config._attn_implementation == "sdpa"
    with attention_for(model, precision, device_type):
        assert model.config._attn_implementation == inside
    assert model.config._attn_implementation == "sdpa"
    assert "attn_implementation" not in model.config.to_json_string()  # never saved with the model


def test_eager_attention_computes_what_sdpa_does():
    tok = tiny.tokenizer()
    model = tiny.policy_lm(tok).eval()
    ids = torch.tensor([tok("yes no maybe two four")["input_ids"]])
    with torch.no_grad():
        sdpa = model(input_ids=ids).logits
        with attention_for(model, "bf16", "cpu"):
            eager = model(input_ids=ids).logits
    torch.testing.assert_close(eager, sdpa, atol=1e-5, rtol=1e-5)


def test_bf16_training_is_reproducible():
    """Same seed, same data, bf16 autocast (eager attention on a CPU): bit-identical weights twice,
    on two threads as the default run uses, so a bf16 run keeps its hashes from run to run."""
    from prefpipe.train.reward import train_reward_model

    tok, threads = tiny.tokenizer(), torch.get_num_threads()
    weights = []
    try:
        torch.set_num_threads(2)
        for _ in range(2):
            model = tiny.reward_model(tok)
            train_reward_model(model, tok, tiny.pairs(), tiny.reward_params(), 64, 0,
                               TrainContext(precision="bf16"))
            weights.append(model.state_dict())
    finally:
        torch.set_num_threads(threads)
    assert weights[0].keys() == weights[1].keys()
    assert all(torch.equal(weights[0][k], weights[1][k]) for k in weights[0])
    assert not torch.equal(weights[0]["score.weight"], tiny.reward_model(tok).state_dict()["score.weight"])
