"""What DVC itself says about a stage, asked through its command line (never its log text)."""
from __future__ import annotations

import json
import subprocess
from pathlib import Path

from flows.env import ROOT, command_environment


def up_to_date(stage: str, root: Path = ROOT) -> bool:
    """`dvc status STAGE` finds nothing changed, so `dvc repro --single-item STAGE` will skip it.

    False when dvc can't tell (e.g. a broken dvc.yaml): the repro that follows reports why."""
    result = subprocess.run(["dvc", "status", "--json", stage], cwd=root, env=command_environment(),
                            capture_output=True, text=True)
    if result.returncode != 0:
        return False
    try:
        return not json.loads(result.stdout or "{}")
    except json.JSONDecodeError:
        return False
