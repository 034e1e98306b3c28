"""Where stages read and write; dvc.yaml declares the same paths."""
from pathlib import Path

DATA = Path("data")
MODELS = Path("models")
METRICS = Path("metrics")
PLOTS = Path("plots")
REPORTS = Path("reports")

PROMPTS = DATA / "prompts.parquet"
SFT_CORPUS = DATA / "sft_corpus.parquet"
PAIRS = DATA / "pairs.parquet"
LABELS = DATA / "labels.parquet"
PREFERENCES = DATA / "preferences.parquet"
EVAL_SAMPLES = DATA / "eval_samples.parquet"

TOKENIZER = MODELS / "tokenizer"
SFT_MODEL = MODELS / "sft"
REWARD_MODEL = MODELS / "reward"
POLICY_MODEL = MODELS / "policy"
# Fingerprints of the models params name (prefpipe/models/fingerprint.py), one per key: the stages
# reading a model depend on its file, so a changed model reruns them.
MODEL_SOURCES = MODELS / "sources"
POLICY_SOURCE = MODEL_SOURCES / "policy.json"   # model.policy
REWARD_SOURCE = MODEL_SOURCES / "reward.json"   # reward.model
CRITIC_SOURCE = MODEL_SOURCES / "critic.json"   # label.critic.local.model, when the judge is local

REPORT = REPORTS / "evaluation.md"
HTML_REPORT = REPORTS / "evaluation.html"
