"""Stage label: route each pair to verifiers, the AI critic, simulated annotators or human queues;
store every label, snapshot the labels and the preferences they imply, report agreement and bias.
The preferences are this round's, the imported ones and earlier rounds' (data/round/history.parquet,
with the human labels that arrived since); this round's pairs and their final labels go to the
store's registry, from which the next round's history is drawn.

Run: python -m tasks.label"""
from __future__ import annotations

import logging
from dataclasses import asdict

import pyarrow as pa

from prefpipe.annotate.human_queue import HumanQueue
from prefpipe.data.interchange import import_for_training
from prefpipe.errors import DataError
from prefpipe.label.agreement import agreement_report, decided
from prefpipe.label.critic import (
    CountingJudge,
    critic_bias,
    critic_gold_agreement,
    critique,
    load_constitution,
    make_judge,
)
from prefpipe.label.degenerate import degeneracy_report
from prefpipe.label.preferences import label_report, to_preferences
from prefpipe.label.route import LabelRouter
from prefpipe.label.types import Label, PairToLabel
from prefpipe.label.verifier import Verifier
from prefpipe.rounds.history import preference_rows
from prefpipe.store import parquet_parts, read_parquet, rows, write_parquet
from prefpipe.store.keys import label_id
from prefpipe.verify.sandbox import SandboxLimits
from prefpipe.vocab import Choice, JudgeBackend, LabelSource
from prefpipe.world.catalog import to_checked_prompt, to_world_prompt
from tasks import paths
from tasks._stage import StageInputError, run_stage, write_json
from tasks.round_info import read_round_info

log = logging.getLogger("prefpipe")
LABEL_FIELDS = ("pair_id", "source", "annotator", "choice", "confidence", "principle", "rationale",
                "shown_order")
TEXT, FLAG = pa.string(), pa.bool_()
PREFERENCES_SCHEMA = pa.schema([  # data/preferences.parquet: this round's, imported, earlier rounds'
    ("pair_id", TEXT), ("prompt_id", TEXT), ("prompt", TEXT), ("category", TEXT), ("chosen", TEXT),
    ("chosen_finished", FLAG), ("rejected", TEXT), ("rejected_finished", FLAG), ("source", TEXT),
    ("confidence", pa.float64()), ("round", pa.int64())])


def label(params, store) -> dict:
    pairs = rows(read_parquet(paths.PAIRS))
    prompt_rows = rows(read_parquet(paths.PROMPTS))
    world = {r["prompt_id"]: to_world_prompt(r) for r in prompt_rows}  # gold facts: embedded only
    checks = {r["prompt_id"]: to_checked_prompt(r) for r in prompt_rows}  # what the verifier checks
    to_label = [PairToLabel(p["pair_id"], p["prompt_id"], p["category"], p["response_a"], p["finished_a"],
                            p["response_b"], p["finished_b"], p["prompt"]) for p in pairs]
    judge = make_judge(params.label.critic)
    verifier = _verifier(params.label.verifier)
    router = LabelRouter(params.label, params.seed, world, verifier=verifier,
                         critic=_critic(params, world, judge),
                         humans=HumanQueue(store, params.label.human, params.seed), checks=checks)
    try:
        routed = router.run(to_label)
    except ValueError as err:  # a routing that the data cannot support: say which, before any write
        raise StageInputError(f"label.routing: {err}") from err

    store.upsert("labels", _label_table([lab for lab in routed.labels if lab.source != LabelSource.HUMAN]))
    table = _label_table(routed.labels, used=[_used(lab, routed.final.get(lab.pair_id))
                                              for lab in routed.labels])
    write_parquet(table, paths.LABELS)
    earlier = preference_rows(rows(read_parquet(paths.ROUND_HISTORY)))
    preferences, imported = _round_preferences(params, store, pairs, routed.final, earlier)

    report = {"labels": len(routed.labels), "preferences": preferences, "imported": imported,
              "earlier_rounds_preferences": len(earlier),
              "escalated": len(routed.escalated), "human_queued": routed.human_queued,
              "human_pending": routed.human_pending, **label_report(to_label, routed, world)}
    report["verifier_undecided"] = routed.verifier_undecided  # verified alike: passed on
    report["verifier_sandbox"] = verifier.sandbox  # "bubblewrap", or the weaker fallback layers
    if routed.unverifiable:  # only then, so the embedded world's metrics keep their keys
        report["verifier_unverifiable"] = len(routed.unverifiable)
        log.warning("%d verifier-routed pairs have no reference answer or tests (data.answer_column, "
                    "data.tests_column): left to label.verifier.undecided ('%s')", len(routed.unverifiable),
                    params.label.verifier.undecided)
    report.update(agreement_report(_of(routed.labels, LabelSource.SIMULATED), "simulated_"))
    humans = _of(routed.labels, LabelSource.HUMAN)
    if humans:
        report.update(agreement_report(humans, "human_"))
    if routed.critic_judgments:
        report.update(critic_bias(to_label, routed.critic_judgments))
        critic_labels = _of(routed.labels, LabelSource.CRITIC)
        report["critic_gold_agreement"] = critic_gold_agreement(to_label, critic_labels, world)
        report.update(_critic_answers(judge))
    degenerate, warnings = degeneracy_report(routed.labels, routed.critic_judgments)
    report.update(degenerate)
    for warning in warnings:
        log.warning("degenerate labels: %s", warning)
    log.info("%d labels (%s), %d decisive preferences -> %s", len(routed.labels),
             ", ".join(f"{k[6:]} {v}" for k, v in report.items() if k.startswith("count_")),
             preferences, paths.PREFERENCES)
    if routed.human_pending:
        log.info("%d human tasks still pending in the annotation queues (`prefpipe label serve`)",
                 routed.human_pending)
    write_json(paths.METRICS / "label.json", report)
    return report


def _round_preferences(params, store, pairs: list[dict], final: dict[str, Label],
                       earlier: list[dict]) -> tuple[int, int]:
    """This round's preferences, those of `label.imports` (imported into the store on the way, a
    batch at a time) and earlier rounds', each with its round (None: imported), written to
    data/preferences.parquet part by part; this round's pairs and final labels go to the registry,
    with the human labels seen (those arriving later start the next round). Returns (preferences
    written, of which imported)."""
    number = int(read_round_info()["round"])
    own = [{**p, "round": number} for p in to_preferences(pairs, final)]
    with parquet_parts(paths.PREFERENCES, PREFERENCES_SCHEMA) as write:
        write(pa.Table.from_pylist(own, schema=PREFERENCES_SCHEMA))
        imported = _imported(params, store, write)
        write(pa.Table.from_pylist(earlier, schema=PREFERENCES_SCHEMA))
    store.registry.record_pairs(number, [_round_pair(p, final.get(p["pair_id"])) for p in pairs])
    store.registry.note_labels(number, *store.registry.human_labels_digest())
    return len(own) + imported + len(earlier), imported


def _round_pair(pair: dict, final: Label | None) -> dict:
    """A pair of this round with its final label, as the registry keeps it for later rounds."""
    keep = ("pair_id", "prompt_id", "prompt", "category", "response_a", "finished_a", "response_b",
            "finished_b")
    return {**{k: pair[k] for k in keep}, "choice": final.choice if final else None,
            "source": final.source if final else None, "confidence": final.confidence if final else None}


def _of(labels: list[Label], source: LabelSource) -> list[Label]:
    return [lab for lab in labels if lab.source == source]


def _used(label: Label, final: Label | None) -> bool:
    """Whether `label` went into training: it decided its pair's final label, and that picks a side
    (a tie or both_bad gives no preference row)."""
    return decided(label, final) and final.choice in Choice.decisive()


def _critic_answers(judge) -> dict:
    """How many of the critic's answers came from its cache and how many from the judge, logged."""
    if not isinstance(judge, CountingJudge):
        return {}
    counts = judge.answer_counts()
    log.info("critic %s: %d answers from the cache, %d from the judge%s", judge.name, counts["cache_hits"],
             counts["judge_calls"], " (delete the cache file or set label.critic.http.cache_path '' to "
             "ask the judge again)" if counts["cache_hits"] else "")
    return {"critic_cache_hits": counts["cache_hits"], "critic_judge_calls": counts["judge_calls"]}


def _imported(params, store, write) -> int:
    """Preferences of `label.imports`: imported into the store (idempotent) and, a batch at a time,
    handed to `write` as preference rows (round None) to be trained on too; returns how many."""
    def write_unranked(batch: pa.Table) -> None:
        write(batch.append_column("round", pa.nulls(batch.num_rows, pa.int64())))

    count = 0
    for spec in params.label.imports:
        column = spec.category_column or None
        try:
            report = import_for_training(store, spec.path, spec.format, write_unranked, spec.source, column,
                                         params.seed, max_chars=params.label.importing.max_chars)
        except DataError as err:
            raise StageInputError(f"label.imports: {err}") from err
        count += report.preferences
        log.info("imported %s: %d preferences (%d new pairs in the store)", spec.path, report.preferences,
                 report.new_pairs)
    return count


def _verifier(settings) -> Verifier:
    limits = SandboxLimits(wall_s=settings.timeout_s, cpu_s=settings.cpu_s, memory_mb=settings.memory_mb)
    return Verifier(limits, workers=settings.workers)


def _critic(params, world, judge):
    constitution = load_constitution(params.label.critic.constitution)
    margin = params.label.critic.tie_margin
    return lambda pairs: critique(pairs, world, constitution, judge, params.seed, margin)


def _label_table(labels: list[Label], used: list[bool] | None = None) -> pa.Table:
    records = []
    for n, lab in enumerate(labels):
        values = asdict(lab)
        record = {"label_id": label_id(lab.pair_id, lab.source, lab.annotator),
                  **{k: values[k] for k in LABEL_FIELDS}}
        if used is not None:
            record["used_for_training"] = used[n]
        records.append(record)
    return pa.Table.from_pylist(records)


if __name__ == "__main__":
    run_stage("label", label, uses_torch=lambda params: params.label.critic.judge == JudgeBackend.LOCAL)
