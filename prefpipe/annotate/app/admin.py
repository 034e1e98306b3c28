"""The admin page: progress, gold accuracy, agreement and the label stage's metrics, live."""
from __future__ import annotations

import json
import math
from collections import Counter
from pathlib import Path

from fastapi import APIRouter, Request
from fastapi.responses import Response

from prefpipe.annotate import annotation
from prefpipe.annotate.app.state import PageUser, State
from prefpipe.store import Store

router = APIRouter()


@router.get("/admin")
def admin_page(request: Request, user: PageUser, state: State) -> Response:
    if not user.is_admin:
        return state.error(request, 403, "Admins only.", user)
    return state.page(request, "admin.html", user=user, csrf=state.csrf(user),
                      **admin_view(state.store, state.metrics_file))


def _number(value: float | None) -> float | None:
    return None if value is None or (isinstance(value, float) and math.isnan(value)) else value


def admin_view(store: Store, metrics_file: Path) -> dict:
    """Progress, gold accuracy, agreement (every human label, gold items included) and the majority
    aggregation of the non-gold labels, computed live from the store."""
    from prefpipe.label import agreement  # the label stage's agreement measures

    every = annotation.human_labels(store, include_gold=True)
    units: dict[str, list[str]] = {}
    for label in every:
        units.setdefault(label.pair_id, []).append(label.choice)
    kappas = {key: {"kappa": _number(v["kappa"]), "n": v["n"]}
              for key, v in sorted(agreement.pairwise_kappa(every).items())}
    alpha = _number(agreement.krippendorff_alpha(units))  # None: too few overlapping labels
    aggregated = agreement.aggregate(annotation.human_labels(store))
    metrics = None
    if metrics_file.is_file():
        try:
            metrics = json.dumps(json.loads(metrics_file.read_text()), indent=2, sort_keys=True)
        except (OSError, ValueError) as err:
            metrics = f"{metrics_file}: unreadable ({err})"
    return {"progress": annotation.progress(store), "kappas": kappas, "alpha": alpha,
            "overlapping_pairs": sum(len(v) >= 2 for v in units.values()),
            "aggregate": dict(sorted(Counter(v.choice for v in aggregated.values()).items())),
            "aggregated_pairs": len(aggregated), "metrics": metrics, "metrics_file": str(metrics_file)}
