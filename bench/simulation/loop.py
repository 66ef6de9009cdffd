"""One labelling policy run over a corpus in one process: the state machine's steps in order.

Iteration 0 labels the random initial sample (``SelectWaveForPeople``'s budget waves) and splits it
(``SplitTrainValidation``: an exact validation count); each trained iteration runs ``TrainDetector``,
``RunPoolInference`` over the unlabelled and validation images, ``ComputeThreshold`` (``boxloop.threshold_step``),
``RouteImages`` (``boxloop.selection.route_for_iteration``), ``SelectImagesForHumans`` (``plan_human_tasks`` within
``boxloop.human_budget.wave_budget``) and the human step (simulated workforce + the answer Lambda's QC rules,
re-asked up to ``MAX_ATTEMPTS`` times when rejected); the loop stops learning like ``IsLabellingDone``: pool
labelled, budget spent, iteration cap, or no progress. Then, as the product does, people finish the unlabelled
images unaided in budget waves (``simulation.people.finish_with_people``) for policies with budget waves.

To compare policies on the cost of a *fully* labelled corpus, whatever is still unlabelled at the end goes to
people in a final pass (with the last model's boxes pre-filled when the policy pre-fills), charged like any other
task; the result says how many images that was.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime

import numpy as np
from pydantic import BaseModel, Field

from boxloop.human_budget import measured_seconds_quantile, wave_budget
from boxloop.human_tasks import observed_seconds_per_answer, plan_human_tasks
from boxloop.models import Box, HumanTaskPurpose, LabelRecord, LabelSource, Prediction
from boxloop.quality import image_miou
from boxloop.selection import Candidate, route_for_iteration
from boxloop.threshold_step import measure_validation, threshold_step
from boxloop.workforce import SimulatedWorkforce
from simulation.corpus_images import CorpusImage
from simulation.detector_jobs import DetectorJobs, TrainedModel
from simulation.oracle import oracle_auto, plain_boxes
from simulation.people import Assigned, Humans, RunState, final_pass, finish_with_people, label_initial_sample
from simulation.policy import Policy, Thresholding, threshold_rule

__all__ = [
    "Humans",
    "IterationResult",
    "PolicyResult",
    "RunState",
    "all_manual",
    "label_initial_sample",
    "plain_boxes",
    "run_policy",
]


class IterationResult(BaseModel):
    """What one trained iteration did and cost."""

    iteration: int
    train_images: int
    train_seconds: float
    model_reused: bool
    inference_images: int
    inference_seconds: float
    target: float
    threshold: float | None
    lower_bound: float | None
    statement: str
    validation_miou: float | None
    auto_images: int
    auto_miou: float | None
    audit_images: int
    uncertain_images: int
    gold_images: int
    human_images: int
    human_seconds: float


class PolicyResult(BaseModel):
    """A policy's totals over the whole corpus (finishing waves and final pass included) and its iterations."""

    name: str
    summary: str
    images: int
    human_hours: float
    initial_sample_hours: float
    """Hours people spent on the initial sample (its waves)."""
    prefilled_hours: float
    """Hours of answers given with pre-filled boxes (another pre-fill factor re-prices these alone)."""
    prefill_factor: float
    anchoring: float
    human_images: int
    auto_images: int
    auto_share: float
    auto_miou: float | None
    human_miou: float | None
    trained_iterations: int
    initial_sample_images: int
    validation_images: int
    finished_by_people: int
    final_pass_images: int
    budget_hours: float
    stop_reason: str
    wall_seconds: float
    iterations: list[IterationResult]
    labels: dict[str, list[Box]] = Field(default_factory=dict, exclude=True)
    """The final label of every image (not written to result files)."""


def _mean(values: Sequence[float]) -> float | None:
    return float(np.mean(values)) if len(values) else None


def all_manual(images: Sequence[CorpusImage], workforce: SimulatedWorkforce, policy: Policy) -> PolicyResult:
    """Every image labelled by people from scratch, with the same QC and re-asks."""
    started = time.monotonic()
    state = RunState()
    final_pass(images, {}, Humans(workforce, policy, state))
    return _totals(policy, workforce, images, state, [], (0, 0, len(images)), 0.0, "all labelled by people", started)


def run_policy(
    policy: Policy,
    images: Sequence[CorpusImage],
    jobs: DetectorJobs,
    workforce: SimulatedWorkforce,
    progress: Callable[[str], None] = lambda message: None,
) -> PolicyResult:
    """Run ``policy`` over ``images`` and measure it against their truth."""
    started = time.monotonic()
    config = policy.config
    by_id = {image.image_id: image for image in images}
    state = RunState()
    humans = Humans(workforce, policy, state)
    first = label_initial_sample(images, policy, humans)
    initial_seconds = state.seconds
    progress(f"{policy.name}: initial sample of {len(first)} labelled, {state.seconds / 3600:.2f} h")

    results: list[IterationResult] = []
    model: TrainedModel | None = None
    predictions: dict[str, Prediction] = {}
    stop_reason = "iteration cap" if config.auto_label else "too small to learn (auto_label false)"
    sample_sent = all(image.image_id in humans.asks for image in first)
    for iteration in range(1, config.max_iterations + 1 if config.auto_label else 1):
        if not state.unlabelled(images):
            stop_reason = "pool labelled"
            break
        if state.seconds >= config.human_budget_seconds or not sample_sent:
            stop_reason = "budget spent"
            break
        unlabelled = state.unlabelled(images)
        result, model, predictions = _iteration(iteration, policy, unlabelled, by_id, state, humans, jobs, model)
        results.append(result)
        progress(
            f"{policy.name}: iteration {iteration}: {result.auto_images} auto, {result.human_images} human, "
            f"threshold {result.threshold}, {state.seconds / 3600:.2f} h so far"
        )
        if result.auto_images == 0 and result.human_images == 0:
            stop_reason = "no progress"
            break
    else:
        if not state.unlabelled(images):
            stop_reason = "pool labelled"

    finished = 0
    if policy.budget_waves and stop_reason not in {"pool labelled", "budget spent"}:
        finished = finish_with_people(images, policy, humans)
    left = state.unlabelled(images)
    prefills = {i.image_id: plain_boxes(predictions[i.image_id]) for i in left if i.image_id in predictions}
    final_pass(left, prefills if policy.prefilled_tasks else {}, humans)
    progress(
        f"{policy.name}: {finished} finished by people, final pass over {len(left)} images, "
        f"{state.seconds / 3600:.2f} h in all"
    )
    counts = (len(first), finished, len(left))
    return _totals(policy, workforce, images, state, results, counts, initial_seconds, stop_reason, started)


def _route(
    policy: Policy,
    unlabelled: list[CorpusImage],
    predictions: dict[str, Prediction],
    threshold: float | None,
    iteration: int,
) -> tuple[list[Prediction], list[Candidate], list[Candidate], float | None]:
    """The iteration's auto-labels, uncertain candidates and audit candidates (the oracle's from true quality)."""
    pool = [predictions[image.image_id] for image in unlabelled]
    if policy.thresholding != Thresholding.ORACLE:
        routing = route_for_iteration(pool, threshold, (), policy.config, iteration)
        return routing.auto, routing.candidates, routing.audit_candidates, None
    truth = {image.image_id: image.truth for image in unlabelled}
    auto, mean = oracle_auto(pool, truth, policy.config.quality.target_miou)
    routing = route_for_iteration(pool, None, {p.image_id for p in auto}, policy.config, iteration)
    return auto, routing.candidates, [], mean


def _iteration(
    iteration: int,
    policy: Policy,
    unlabelled: list[CorpusImage],
    by_id: dict[str, CorpusImage],
    state: RunState,
    humans: Humans,
    jobs: DetectorJobs,
    previous: TrainedModel | None,
) -> tuple[IterationResult, TrainedModel, dict[str, Prediction]]:
    config = policy.config
    human_sources = (LabelSource.HUMAN, LabelSource.AUDIT)
    train = [by_id[image_id] for image_id, label in state.labels.items() if label.source in human_sources]
    validation = [by_id[image_id] for image_id in state.validation]
    known = {image_id: label.boxes for image_id, label in state.labels.items()} | state.validation
    model = jobs.train(train, validation, known, warm_start=previous)
    predictions, inference_seconds, inferred = jobs.infer(model, unlabelled + validation)

    threshold = threshold_step(
        measure_validation((predictions[image_id] for image_id in state.validation), state.validation),
        config.quality,
        lambda: state.gold_scores,
        iteration=iteration,
        model_version=model.key,
        computed_at=datetime.now(UTC).isoformat(),
        rule=threshold_rule(policy.thresholding, config.quality),
    )
    decision = threshold.decision
    routed_auto, candidates, audit_candidates, oracle_mean = _route(
        policy, unlabelled, predictions, decision.threshold, iteration
    )
    if not policy.diverse_selection:  # without embeddings the batch is simply the most uncertain images
        candidates = [candidate.model_copy(update={"embedding": []}) for candidate in candidates]

    def gold_pool() -> list[LabelRecord]:
        return [
            LabelRecord(
                image_id=image_id,
                source_ref=f"file://{by_id[image_id].path}",
                width=by_id[image_id].width,
                height=by_id[image_id].height,
                boxes=boxes,
                box_confidences=[],
                class_map=config.class_map,
                label_source=LabelSource.HUMAN,
                creation_date="",
                job_name="",
                iteration=0,
            )
            for image_id, boxes in sorted(state.validation.items())
            if image_id not in state.used_gold
        ]

    remaining = max(config.human_budget_seconds - state.seconds, 0.0)
    if policy.budget_waves:
        budget, observed = wave_budget(remaining, state.answers), measured_seconds_quantile(state.answer_seconds)
    else:
        budget, observed = remaining, observed_seconds_per_answer(state.seconds, state.answers)
    tasks, _ = plan_human_tasks(
        [candidates], [audit_candidates], gold_pool, config, iteration, budget, observed, policy.prefilled_tasks
    )
    human_ids = {task.image_id for task in tasks if task.purpose != HumanTaskPurpose.GOLD}
    auto = [prediction for prediction in routed_auto if prediction.image_id not in human_ids]
    for prediction in auto:
        state.labels[prediction.image_id] = Assigned(LabelSource.AUTO, plain_boxes(prediction))
    seconds_before = state.seconds
    labelled = 0
    for task in tasks:
        image = by_id[task.image_id]
        if task.purpose == HumanTaskPurpose.GOLD:
            state.used_gold.add(task.image_id)
            answer = humans.label(image, prefill=None)
            if answer is not None:
                state.gold_scores.append(image_miou(answer, task.gold_boxes or []))
            continue
        prefill = plain_boxes(predictions[task.image_id]) if policy.prefilled_tasks else None
        boxes = humans.label(image, prefill=prefill)
        if boxes is not None:
            source = LabelSource.AUDIT if task.purpose == HumanTaskPurpose.AUDIT else LabelSource.HUMAN
            state.labels[task.image_id] = Assigned(source, boxes)
            labelled += 1
    count = {purpose: sum(task.purpose == purpose for task in tasks) for purpose in HumanTaskPurpose}
    auto_quality = [image_miou(plain_boxes(p), by_id[p.image_id].truth) for p in auto]
    statement = decision.statement
    if oracle_mean is not None:
        statement = f"oracle: the {len(routed_auto)} best pool images by true IoU (mean {oracle_mean:.3f})"
    result = IterationResult(
        iteration=iteration,
        train_images=len(train),
        train_seconds=model.seconds,
        model_reused=model.reused,
        inference_images=inferred,
        inference_seconds=inference_seconds,
        target=decision.target,
        threshold=decision.threshold if oracle_mean is None else None,
        lower_bound=decision.lower_bound if policy.thresholding != Thresholding.ORACLE else None,
        statement=statement,
        validation_miou=threshold.validation_miou,
        auto_images=len(auto),
        auto_miou=_mean(auto_quality),
        audit_images=count[HumanTaskPurpose.AUDIT],
        uncertain_images=count[HumanTaskPurpose.UNCERTAIN],
        gold_images=count[HumanTaskPurpose.GOLD],
        human_images=labelled,
        human_seconds=state.seconds - seconds_before,
    )
    return result, model, predictions


def _totals(
    policy: Policy,
    workforce: SimulatedWorkforce,
    images: Sequence[CorpusImage],
    state: RunState,
    iterations: list[IterationResult],
    counts: tuple[int, int, int],
    initial_seconds: float,
    stop_reason: str,
    started: float,
) -> PolicyResult:
    """The result; ``counts`` are the initial sample, the images finished by people and the final pass."""
    truth = {image.image_id: image.truth for image in images}
    labels = dict(state.labels)
    labels |= {image_id: Assigned(LabelSource.HUMAN, boxes) for image_id, boxes in state.validation.items()}
    auto = [image_miou(label.boxes, truth[i]) for i, label in labels.items() if label.source == LabelSource.AUTO]
    human = [image_miou(label.boxes, truth[i]) for i, label in labels.items() if label.source != LabelSource.AUTO]
    initial, finished, final = counts
    return PolicyResult(
        name=policy.name,
        summary=policy.summary,
        images=len(images),
        human_hours=state.seconds / 3600.0,
        initial_sample_hours=initial_seconds / 3600.0,
        prefilled_hours=state.prefilled_seconds / 3600.0,
        prefill_factor=workforce.prefill_factor,
        anchoring=workforce.anchoring,
        human_images=len(human),
        auto_images=len(auto),
        auto_share=len(auto) / len(images),
        auto_miou=_mean(auto),
        human_miou=_mean(human),
        trained_iterations=len(iterations),
        initial_sample_images=initial,
        validation_images=len(state.validation),
        finished_by_people=finished,
        final_pass_images=final,
        budget_hours=policy.config.human_budget_hours,
        stop_reason=stop_reason,
        wall_seconds=time.monotonic() - started,
        iterations=iterations,
        labels={image_id: label.boxes for image_id, label in labels.items()},
    )
