#!/usr/bin/env bash
# The runs behind docs/labeling.md: who labels the pairs, and what a biased critic does downstream.
# Each is a DVC experiment on the default world (DPO), its metrics collected into
# docs/results/NAME/. Run from the repository root after `make run`:
#   bash docs/labeling_experiments.sh      (about 18 minutes on a 2-core CPU)
set -euo pipefail
export PATH="$PWD/.venv/bin:$PATH"

run() {
  local name=$1; shift
  git checkout -q params.yaml
  dvc exp remove "$name" >/dev/null 2>&1 || true
  echo "=== $name: dvc exp run $*"
  # gates stay reported (metrics/gates.json) but do not stop the deliberately bad runs
  dvc exp run -n "$name" -S evaluate.enforce_gates=false "$@"
  python -m prefpipe.evaluate.experiments collect "$name"
}

run critic-labels                                  # the default routing
run simulated-labels -S label.routing.default=simulated -S label.verifier.undecided=simulated
run verbose-critic -S label.critic.verbosity_bias=0.3
run position-biased-critic -S label.critic.position_bias=2.0
run escalated-critic -S label.escalate.to=simulated -S label.escalate.critic_confidence_below=0.8
python -m prefpipe.evaluate.experiments table --columns labeling critic-labels simulated-labels \
  verbose-critic position-biased-critic escalated-critic > docs/results/labeling_table.md
git checkout -q params.yaml
dvc repro   # back to the default run's outputs (from DVC's run cache)
