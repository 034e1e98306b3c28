#!/usr/bin/env bash
# The runs behind docs/results.md: each one a DVC experiment (`dvc exp run -S ...`) on the default
# world, its metrics and training curve collected into docs/results/NAME/ (the numbers are those of
# `dvc metrics show` after the run). Run from the repository root after `make run`:
#   bash docs/experiments.sh            (about 25 minutes on a 2-core CPU)
set -euo pipefail
export PATH="$PWD/.venv/bin:$PATH"
BIASED="-S label.routing.default=simulated -S label.routing.harmful=simulated -S label.simulated.length_bias=0.5"

run() {
  local name=$1; shift
  git checkout -q params.yaml
  dvc exp remove "$name" >/dev/null 2>&1 || true
  echo "=== $name: dvc exp run $*"
  # gates stay reported (metrics/gates.json) but do not stop the deliberately bad runs
  dvc exp run -n "$name" -S evaluate.enforce_gates=false "$@"
  dvc metrics show --json > /dev/null   # fails loudly if a metrics file is missing
  python -m prefpipe.evaluate.experiments collect "$name"
}

run dpo
run ppo -S policy.algorithm=ppo
run grpo-arithmetic -S policy.algorithm=grpo -S 'policy.grpo.categories=[arithmetic]'
run ppo-biased-rm $BIASED -S policy.algorithm=ppo
run ppo-biased-rm-beta0 $BIASED -S policy.algorithm=ppo -S policy.ppo.kl.adaptive=false \
  -S policy.ppo.kl.beta=0.0

python -m prefpipe.evaluate.experiments plot ppo-biased-rm ppo-biased-rm-beta0 \
  --keys score,kl_nats,response_tokens,beta --out docs/results/reward_hacking.png --kl-target 1.5 \
  --title "PPO against a length-biased reward model: adaptive beta vs beta = 0"
python -m prefpipe.evaluate.experiments plot ppo --keys score,kl_nats,beta,response_tokens \
  --out docs/results/ppo_kl_budget.png --title "PPO with adaptive beta (KL target 1.5 nats)" --kl-target 1.5
python -m prefpipe.evaluate.experiments plot grpo-arithmetic --keys reward,kl_nats,response_tokens \
  --out docs/results/grpo.png --title "GRPO on verifier rewards"
git checkout -q params.yaml
dvc repro   # back to the default run's outputs (from DVC's run cache)
dvc exp show --no-pager --csv --only-changed > docs/results/experiments.csv
