"""Verifiable accuracy: pass@1 and pass@k on prompts with a checkable answer, per family.

pass@k is the unbiased estimator of Chen et al. 2021 ("Evaluating Large Language Models Trained on
Code", eq. 1): from n samples of which c pass, pass@k = 1 - C(n-c, k) / C(n, k), the chance that k
of the n drawn without replacement include a passing one; pass@1 = c / n. A prompt is checkable when
the verifier has a reference for it (`prefpipe.verify.verifiers.reference`): the embedded world's
arithmetic and code prompts, and your own prompts that carry an answer or tests
(`prefpipe.world.catalog.to_checked_prompt`). A sample passes only with reward 1.0 (all tests)."""
from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Sequence

from prefpipe.verify.sandbox import SandboxLimits
from prefpipe.verify.verifiers import reference, training_rewards
from prefpipe.world.prompts import WorldPrompt

Checker = Callable[[Sequence[tuple[WorldPrompt, str, bool]]], list[float]]
PASS = 1.0  # a reward of 1.0 is a right answer / every test passed; a code pass fraction below is a fail


def pass_at_k(n: int, c: int, k: int) -> float:
    """Unbiased pass@k from n samples with c correct (Chen et al. 2021, eq. 1).

    1 - C(n-c, k) / C(n, k), computed as 1 - Π_{i=n-c+1}^{n} (1 - k/i) to avoid huge binomials;
    1.0 when n - c < k (every k-subset holds a correct sample)."""
    if not 0 <= c <= n or not 1 <= k <= n:
        raise ValueError(f"pass_at_k needs 0 <= c <= n and 1 <= k <= n, got n={n}, c={c}, k={k}")
    if n - c < k:
        return 1.0
    miss = 1.0  # P(k samples drawn without replacement are all wrong)
    for i in range(n - c + 1, n + 1):
        miss *= 1.0 - k / i
    return 1.0 - miss


def is_verifiable(prompt: WorldPrompt) -> bool:
    """Whether the verifier can check responses to `prompt` (it has a reference answer or tests)."""
    try:
        reference(prompt)
    except (ValueError, KeyError):
        return False
    return True


def make_checker(limits: SandboxLimits, workers: int) -> Checker:
    """The verifier's rewards, as GRPO's (`training_rewards`): the embedded world's prompts by
    `verify` (nothing runs), your own by `checked_rewards` (sympy answers, code in the sandbox)."""
    return lambda items: training_rewards(items, limits, workers)


def verifiable_accuracy(prompts: Sequence[WorldPrompt],
                        samples_per_prompt: Sequence[Sequence[tuple[str, bool]]],
                        k_values: Sequence[int], checker: Checker) -> dict[str, float]:
    """pass@k per family and overall, the mean over prompts of `pass_at_k(n, c, k)`.

    samples_per_prompt[i] holds prompt i's n sampled (response, finished); every prompt must be
    verifiable (`is_verifiable`) and have n >= max(k_values). `checker` is called once on every
    sample. Keys: 'pass@<k>_<family>' and 'verifiable_prompts_<family>' for each family, and
    'pass@<k>' and 'verifiable_prompts' over all prompts; with no prompts, only verifiable_prompts 0."""
    if len(prompts) != len(samples_per_prompt):
        raise ValueError(f"verifiable_accuracy: {len(prompts)} prompts but {len(samples_per_prompt)} "
                         "sample lists; give one list per prompt")
    if not k_values:
        raise ValueError("verifiable_accuracy: give at least one k")
    for prompt, samples in zip(prompts, samples_per_prompt):
        if not is_verifiable(prompt):
            raise ValueError(f"prompt {prompt.prompt_id} (category '{prompt.family}') has no reference "
                             "answer or tests: pass only verifiable prompts (is_verifiable)")
        if len(samples) < max(k_values):
            raise ValueError(f"prompt {prompt.prompt_id} has {len(samples)} samples, fewer than "
                             f"k={max(k_values)}: pass@k needs n >= k")
    items = [(p, response, finished) for p, samples in zip(prompts, samples_per_prompt)
             for response, finished in samples]
    rewards = checker(items)
    if len(rewards) != len(items):
        raise RuntimeError(f"the checker returned {len(rewards)} rewards for {len(items)} samples")
    passed = iter(reward >= PASS for reward in rewards)
    by_family: dict[str, list[tuple[int, int]]] = defaultdict(list)  # family -> (n, c) per prompt
    for prompt, samples in zip(prompts, samples_per_prompt):
        correct = sum(next(passed) for _ in samples)
        by_family[prompt.family].append((len(samples), correct))
    groups = {**{f"_{family}": by_family[family] for family in sorted(by_family)},
              "": [nc for family in sorted(by_family) for nc in by_family[family]]}
    out: dict[str, float] = {}
    for suffix, counts in groups.items():
        out[f"verifiable_prompts{suffix}"] = len(counts)
        if counts:
            for k in k_values:
                out[f"pass@{k}{suffix}"] = sum(pass_at_k(n, c, k) for n, c in counts) / len(counts)
    return out
