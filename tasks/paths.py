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

REPORT = REPORTS / "evaluation.md"
