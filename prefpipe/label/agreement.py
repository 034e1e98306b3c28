"""Inter-annotator agreement (Cohen's κ, Krippendorff's α) and majority aggregation of labels.

Choices are nominal categories ('a', 'b', 'tie', 'both_bad'), always relative to the pair's a/b.
A label that `aggregate` makes from several votes is marked by its annotator, `majority-of-N`
(`majority_annotator`); `is_majority` and `decided` read that marker, nothing else parses it."""
from __future__ import annotations

import itertools
from collections import Counter, defaultdict
from collections.abc import Mapping, Sequence

from prefpipe.label.types import Label
from prefpipe.vocab import Choice

MAJORITY_PREFIX = "majority-of-"


def cohen_kappa(first: Sequence[str], second: Sequence[str]) -> float | None:
    """Cohen (1960): κ = (p_o - p_e) / (1 - p_e) for two raters over the same items.

    p_o is the observed agreement, p_e = Σ_k p₁(k)·p₂(k) the agreement expected by chance from each
    rater's own category frequencies. None when p_e = 1 (both raters used one category: undefined)."""
    if len(first) != len(second):
        raise ValueError(f"raters labelled different numbers of items: {len(first)} vs {len(second)}")
    n = len(first)
    if n == 0:
        return None
    observed = sum(x == y for x, y in zip(first, second, strict=True)) / n
    freq_first, freq_second = Counter(first), Counter(second)
    expected = sum(freq_first[k] * freq_second[k] for k in freq_first) / (n * n)
    if expected == 1.0:
        return None
    return (observed - expected) / (1.0 - expected)


def krippendorff_alpha(units: Mapping[str, Sequence[str]]) -> float | None:
    """Krippendorff's α for nominal data (Krippendorff 2011, "Computing Krippendorff's Alpha-Reliability").

    α = 1 - D_o / D_e from the coincidence matrix o_ck = Σ_u (number of c-k value pairs in u) / (m_u - 1);
    D_o = Σ_{c≠k} o_ck / n, D_e = Σ_{c≠k} n_c·n_k / (n(n - 1)). Units with fewer than two values are
    unpairable and skipped; any number of raters per unit and missing values are fine. None when there
    is no variation at all (D_e = 0)."""
    coincidence: Counter = Counter()
    for values in units.values():
        m = len(values)
        if m < 2:
            continue
        for i, j in itertools.permutations(range(m), 2):
            coincidence[values[i], values[j]] += 1.0 / (m - 1)
    totals: Counter = Counter()
    for (c, _), weight in coincidence.items():
        totals[c] += weight
    n = sum(totals.values())
    if n <= 1:
        return None
    disagreement_observed = sum(w for (c, k), w in coincidence.items() if c != k) / n
    pairs_expected = sum(totals[c] * totals[k] for c in totals for k in totals if c != k)
    disagreement_expected = pairs_expected / (n * (n - 1))
    if disagreement_expected == 0:
        return None
    return 1.0 - disagreement_observed / disagreement_expected


def by_annotator(labels: Sequence[Label]) -> dict[str, dict[str, str]]:
    """annotator -> {pair_id: choice}; a later label of the same annotator and pair wins."""
    table: dict[str, dict[str, str]] = defaultdict(dict)
    for label in labels:
        table[label.annotator][label.pair_id] = label.choice
    return dict(table)


def pairwise_kappa(labels: Sequence[Label]) -> dict[str, dict]:
    """'annA|annB' -> {'kappa': κ or None, 'n': items both labelled}, for every pair sharing an item."""
    table = by_annotator(labels)
    result = {}
    for first, second in itertools.combinations(sorted(table), 2):
        shared = sorted(set(table[first]) & set(table[second]))
        if shared:
            kappa = cohen_kappa([table[first][p] for p in shared], [table[second][p] for p in shared])
            result[f"{first}|{second}"] = {"kappa": kappa, "n": len(shared)}
    return result


def majority_annotator(votes: int) -> str:
    """The annotator of a label aggregated from `votes` labels: 'majority-of-3'."""
    return f"{MAJORITY_PREFIX}{votes}"


def is_majority(label: Label) -> bool:
    """Whether `label` is a majority vote made by `aggregate` (not one annotator's label)."""
    return label.annotator.startswith(MAJORITY_PREFIX)


def decided(label: Label, final: Label | None) -> bool:
    """Whether `label` decided its pair's final label `final`: it is that label, or one vote of the
    majority `aggregate` made from labels of its source."""
    if final is None:
        return False
    return final is label or (final.source == label.source and is_majority(final))


def aggregate(labels: Sequence[Label]) -> dict[str, Label]:
    """One label per pair by majority vote.

    The most frequent choice wins with confidence = its vote share; a tie for first place between
    'a' and 'b' (or any other split at the top) becomes 'tie' with confidence 0.5 — no preference.
    A single label passes through unchanged."""
    grouped: dict[str, list[Label]] = defaultdict(list)
    for label in labels:
        grouped[label.pair_id].append(label)
    result = {}
    for pair_id, group in grouped.items():
        if len(group) == 1:
            result[pair_id] = group[0]
            continue
        votes = Counter(label.choice for label in group).most_common()
        top_choice, top_count = votes[0]
        if len(votes) > 1 and votes[1][1] == top_count:
            choice, confidence = Choice.TIE.value, 0.5
        else:
            choice, confidence = top_choice, top_count / len(group)
        tally = ", ".join(f"{c} {n}" for c, n in votes)
        result[pair_id] = Label(pair_id, group[0].source, majority_annotator(len(group)), choice,
                                confidence, rationale=f"votes: {tally}")
    return result


def agreement_report(labels: Sequence[Label], prefix: str = "") -> dict:
    """κ per annotator pair (and their mean, weighted by shared items), α over all units, for one source.

    Labels of several sources are refused (ValueError): an imported file or a labeler is no
    annotator whose agreement with people means anything."""
    sources = sorted({label.source for label in labels})
    if len(sources) > 1:
        raise ValueError(f"agreement is measured within one label source; got labels of {sources}")
    kappas = pairwise_kappa(labels)
    units: dict[str, list[str]] = defaultdict(list)
    for label in labels:
        units[label.pair_id].append(label.choice)
    report: dict = {f"{prefix}alpha": krippendorff_alpha(units),
                    f"{prefix}pairs_multiply_labelled": sum(len(v) > 1 for v in units.values())}
    defined = [(k["kappa"], k["n"]) for k in kappas.values() if k["kappa"] is not None]
    if defined:
        report[f"{prefix}kappa_mean"] = sum(k * n for k, n in defined) / sum(n for _, n in defined)
    report[f"{prefix}kappa"] = {name: value["kappa"] for name, value in kappas.items()}
    return report
