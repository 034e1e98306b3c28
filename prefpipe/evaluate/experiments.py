"""Compare pipeline runs (DVC experiments): collect each run's metrics and training curves, then
write a markdown table and side-by-side training plots.

    python -m prefpipe.evaluate.experiments collect NAME [--into docs/results]
    python -m prefpipe.evaluate.experiments table NAME...
    python -m prefpipe.evaluate.experiments plot NAME... --keys score,kl_nats --out FILE.png
"""
from __future__ import annotations

import argparse
import csv
import json
import shutil
from pathlib import Path

METRIC_FILES = ("evaluate", "policy", "reward", "label")


def collect(name: str, into: Path, root: Path = Path(".")) -> Path:
    """Copy the workspace's metrics (as `dvc metrics show` reads them) and policy curve."""
    target = into / name
    target.mkdir(parents=True, exist_ok=True)
    for stem in METRIC_FILES:
        source = root / "metrics" / f"{stem}.json"
        if source.exists():
            shutil.copy(source, target / source.name)
    shutil.copy(root / "plots" / "policy_train.csv", target / "policy_train.csv")
    return target


def load_run(folder: Path) -> dict:
    metrics = {p.stem: json.loads(p.read_text()) for p in sorted(folder.glob("*.json"))}
    with open(folder / "policy_train.csv") as handle:
        history = [{k: float(v) for k, v in row.items() if v not in ("", None)}
                   for row in csv.DictReader(handle)]
    return {"metrics": metrics, "history": history}


TABLE_COLUMNS = (  # (header, metrics file, key, format)
    ("gold win rate vs SFT [95% CI]", "evaluate", "win_rate", "ci"),
    ("KL nats (held-out)", "evaluate", "kl_nats", ".2f"),
    ("reward-model win rate", "evaluate", "rm_win_rate", ".3f"),
    ("RM score policy", "evaluate", "policy_rm_score", ".2f"),
    ("tokens policy / SFT", "evaluate", "policy_mean_tokens", "tokens"),
    ("flaws / response", "evaluate", "policy_flaws", ".3f"),
    ("distinct share", "evaluate", "policy_distinct_share", ".3f"),
    ("arithmetic acc. policy / SFT", "evaluate", "policy_accuracy_arithmetic", "arith"),
    ("RM gold acc.", "reward", "val_gold_accuracy", ".3f"),
    ("RM-length corr.", "reward", "reward_length_correlation", ".2f"),
)


LABELING_COLUMNS = (
    ("preferences", "label", "preferences", "d"),
    ("training labels vs gold", "label", "gold_agreement", ".3f"),
    ("critic vs gold", "label", "critic_gold_agreement", ".3f"),
    ("critic prefers longer", "label", "critic_prefers_longer", ".3f"),
    ("critic prefers first shown", "label", "critic_prefers_first", ".3f"),
    ("critic orders agree", "label", "critic_order_agreement", ".3f"),
    ("escalated", "label", "escalated", "d"),
    ("RM gold acc.", "reward", "val_gold_accuracy", ".3f"),
    ("RM-length corr.", "reward", "reward_length_correlation", ".2f"),
    ("gold win rate vs SFT [95% CI]", "evaluate", "win_rate", "ci"),
    ("KL nats", "evaluate", "kl_nats", ".2f"),
    ("tokens policy / SFT", "evaluate", "policy_mean_tokens", "tokens"),
    ("flaws / response", "evaluate", "policy_flaws", ".3f"),
)
COLUMN_SETS = {"algorithms": TABLE_COLUMNS, "labeling": LABELING_COLUMNS}


def markdown_table(runs: dict[str, dict], columns: tuple = TABLE_COLUMNS) -> str:
    """The key metrics of each run, one row per run."""
    lines = ["| run | " + " | ".join(h for h, *_ in columns) + " |",
             "|---|" + "---|" * len(columns)]
    for name, run in runs.items():
        cells = []
        for _, file, key, fmt in columns:
            values = run["metrics"].get(file, {})
            if values.get(key) is None:
                cells.append("")
            elif fmt == "ci":
                cells.append(f"{values[key]:.3f} [{values[key + '_low']:.3f}, {values[key + '_high']:.3f}]")
            elif fmt == "tokens":
                cells.append(f"{values[key]:.1f} / {values['reference_mean_tokens']:.1f}")
            elif fmt == "arith":
                cells.append(f"{values[key]:.3f} / {values['reference_accuracy_arithmetic']:.3f}")
            else:
                cells.append(format(values[key], fmt))
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def plot(runs: dict[str, dict], keys: list[str], out: Path, title: str = "",
         kl_target: float | None = None) -> None:
    """One panel per key, every run a line on it: the runs side by side over training steps."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(keys), figsize=(4.2 * len(keys), 3.4), squeeze=False)
    for axis, key in zip(axes[0], keys):
        for name, run in runs.items():
            points = [(r["step"], r[key]) for r in run["history"] if key in r]
            if points:
                axis.plot(*zip(*points), label=name)
        if key == "kl_nats" and kl_target:
            axis.axhline(kl_target, color="grey", linestyle="--", linewidth=1, label="KL target")
            axis.axhspan(0.7 * kl_target, 1.3 * kl_target, color="grey", alpha=0.12, label="±30%")
            axis.legend(fontsize=8)
        axis.set_title(key)
        axis.set_xlabel("iteration")
        axis.grid(alpha=0.3)
    axes[0][0].legend(fontsize=8)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=110)
    plt.close(fig)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    c = sub.add_parser("collect")
    c.add_argument("name")
    c.add_argument("--into", type=Path, default=Path("docs/results"))
    t = sub.add_parser("table")
    t.add_argument("names", nargs="+")
    t.add_argument("--columns", choices=sorted(COLUMN_SETS), default="algorithms")
    t.add_argument("--into", type=Path, default=Path("docs/results"))
    p = sub.add_parser("plot")
    p.add_argument("names", nargs="+")
    p.add_argument("--keys", required=True)
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--title", default="")
    p.add_argument("--kl-target", type=float, default=None)
    p.add_argument("--into", type=Path, default=Path("docs/results"))
    args = parser.parse_args()
    if args.command == "collect":
        print(collect(args.name, args.into))
    elif args.command == "table":
        runs = {name: load_run(args.into / name) for name in args.names}
        print(markdown_table(runs, COLUMN_SETS[args.columns]))
    else:
        runs = {name: load_run(args.into / name) for name in args.names}
        plot(runs, args.keys.split(","), args.out, args.title, args.kl_target)
        print(args.out)


if __name__ == "__main__":
    main()
