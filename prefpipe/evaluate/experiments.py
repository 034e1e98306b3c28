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

from prefpipe.evaluate.headline import ALGORITHMS_TABLE, HEADLINES, LABELING_TABLE, Headline, view

METRIC_FILES = tuple(dict.fromkeys(h.file for h in HEADLINES.values()))  # the files headlines read
COLLECTED = (*METRIC_FILES, "gates")  # what `collect` copies: those and the gates' verdicts


def collect(name: str, into: Path, root: Path = Path(".")) -> Path:
    """Copy the workspace's metrics (as `dvc metrics show` reads them) and policy curve."""
    target = into / name
    target.mkdir(parents=True, exist_ok=True)
    for stem in COLLECTED:
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


COLUMN_SETS = {"algorithms": view(ALGORITHMS_TABLE), "labeling": view(LABELING_TABLE)}


def markdown_table(runs: dict[str, dict], columns: tuple[Headline, ...] = COLUMN_SETS["algorithms"]) -> str:
    """The key metrics of each run, one row per run (columns from prefpipe.evaluate.headline)."""
    lines = ["| run | " + " | ".join(c.label for c in columns) + " |",
             "|---|" + "---|" * len(columns)]
    for name, run in runs.items():
        cells = [c.cell(run["metrics"].get(c.file, {})) for c in columns]
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
