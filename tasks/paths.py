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

# Rounds (tasks/round.py): what the round samples from and trains on besides its own pairs
GENERATOR_MODEL = MODELS / "generator"           # the published policy this round samples from
ROUND = DATA / "round"
ROUND_INFO = ROUND / "round.json"                # the round's number and generator
ROUND_PROMPTS = ROUND / "prompts.parquet"        # the prompts due this round
ROUND_HISTORY = ROUND / "history.parquet"        # earlier rounds' pairs with their labels now
ROUND_REPORT = REPORTS / "round.md"


def versions_dir(store_path: str | Path) -> Path:
    """Where published versions' artifacts live: beside the store."""
    return Path(store_path).parent / "versions"
