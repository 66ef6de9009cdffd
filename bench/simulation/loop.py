"""One labelling policy run over a corpus in one process: the state machine's steps in order.

Iteration 0 labels the random initial sample (``SelectInitialSample``) and splits it
(``SplitTrainValidation``); each trained iteration runs ``TrainDetector``, ``RunPoolInference`` over the
unlabelled and validation images, ``ComputeThreshold`` (``boxloop.threshold_step``), ``RouteImages``
(``boxloop.selection.route_for_iteration``), ``SelectImagesForHumans`` (``plan_human_tasks``) and the human step (simulated workforce + the answer
Lambda's QC rules, re-asked up to ``MAX_ATTEMPTS`` times when rejected); the loop stops like ``Done?``: pool
labelled, budget spent, iteration cap, or no progress.

To compare policies on the cost of a *fully* labelled corpus, whatever the loop leaves unlabelled at the
end goes to people in a final pass (with the last model's boxes pre-filled when the policy pre-fills),
charged like any other task; the result says how many images that was.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

import numpy as np
from pydantic import BaseModel, Field

from boxloop.human_tasks import observed_seconds_per_answer, plan_human_tasks
from boxloop.initial_sample import random_sample
from boxloop.models import Box, HumanTaskPurpose, LabelRecord, LabelSource, Prediction
from boxloop.qc import check_rules
from boxloop.quality import image_miou
from boxloop.selection import route_for_iteration
from boxloop.threshold_step import measure_validation, threshold_step
from boxloop.validation_split import is_validation
from boxloop.workforce import SimulatedWorkforce
from simulation.corpus_images import CorpusImage
from simulation.detector_jobs import DetectorJobs, TrainedModel
from simulation.policy import Policy, threshold_rule

MAX_ATTEMPTS = 3
"""Asks per image before a rejected image goes back to the pool (each ask is charged)."""

FINAL_PASS_ROUNDS = 10
"""Rounds of ``MAX_ATTEMPTS`` asks the final pass makes before it gives up on an image with an error."""


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
    """A policy's totals over the whole corpus (final pass included) and its iterations."""

    name: str
    summary: str
    images: int
    human_hours: float
    human_images: int
    auto_images: int
    auto_share: float
    auto_miou: float | None
    human_miou: float | None
    trained_iterations: int
    initial_sample_images: int
    final_pass_images: int
    stop_reason: str
    wall_seconds: float
    iterations: list[IterationResult]
    labels: dict[str, list[Box]] = Field(default_factory=dict, exclude=True)
    """The final label of every image (not written to result files)."""


@dataclass
class Assigned:
    """An image's label in a run and where it came from."""

    source: LabelSource
    boxes: list[Box]


@dataclass
class RunState:
    """Labels, validation labels, human seconds and gold scores of a run so far."""

    labels: dict[str, Assigned] = field(default_factory=dict)
    validation: dict[str, list[Box]] = field(default_factory=dict)
    seconds: float = 0.0
    answers: int = 0
    gold_scores: list[float] = field(default_factory=list)
    used_gold: set[str] = field(default_factory=set)

    def unlabelled(self, images: Sequence[CorpusImage]) -> list[CorpusImage]:
        """The images with neither a label nor a validation label yet."""
        return [i for i in images if i.image_id not in self.labels and i.image_id not in self.validation]


def _mean(values: Sequence[float]) -> float | None:
    return float(np.mean(values)) if len(values) else None


def plain_boxes(prediction: Prediction) -> list[Box]:
    """A prediction's boxes without their scores, as a label holds them."""
    return [Box(**box.model_dump(include=set(Box.model_fields))) for box in prediction.boxes]


class Humans:
    """The simulated workforce behind the answer Lambda's QC; every ask is charged."""

    def __init__(self, workforce: SimulatedWorkforce, policy: Policy, state: RunState) -> None:
        self.workforce = workforce
        self.config = policy.config
        self.state = state
        self.asks: Counter[str] = Counter()

    def label(self, image: CorpusImage, prefill: Sequence[Box] | None) -> list[Box] | None:
        """An accepted answer, or None when ``MAX_ATTEMPTS`` answers all broke a QC rule.

        Every ask of an image goes to the next worker (a gold image is not answered by whoever labelled it).
        """
        for _ in range(MAX_ATTEMPTS):
            attempt = self.asks[image.image_id]
            self.asks[image.image_id] += 1
            answer = self.workforce.answer(image.image_id, image.width, image.height, prefill=prefill, attempt=attempt)
            self.state.seconds += answer.time_spent_seconds
            self.state.answers += 1
            if not check_rules(answer.boxes, image.width, image.height, len(self.config.classes), self.config.qc):
                return answer.boxes
        return None

    def label_until_accepted(self, image: CorpusImage, prefill: Sequence[Box] | None) -> list[Box]:
        """An accepted answer, asking up to ``FINAL_PASS_ROUNDS`` rounds; RuntimeError naming the image after that."""
        for _ in range(FINAL_PASS_ROUNDS):
            boxes = self.label(image, prefill)
            if boxes is not None:
                return boxes
        raise RuntimeError(f"no answer for image {image.path} passed QC in {FINAL_PASS_ROUNDS * MAX_ATTEMPTS} asks")


def all_manual(images: Sequence[CorpusImage], workforce: SimulatedWorkforce, policy: Policy) -> PolicyResult:
    """Every image labelled by people from scratch, with the same QC and re-asks."""
    started = time.monotonic()
    state = RunState()
    humans = Humans(workforce, policy, state)
    for image in images:
        state.labels[image.image_id] = Assigned(LabelSource.HUMAN, humans.label_until_accepted(image, None))
    return _totals(policy, images, state, [], 0, len(images), "all labelled by people", time.monotonic() - started)


def initial_sample(images: Sequence[CorpusImage], policy: Policy) -> list[CorpusImage]:
    """``SelectInitialSample``'s keyed-random sample of the pool."""
    by_id = {image.image_id: image for image in images}
    records = random_sample(
        [[image.record() for image in images]], policy.config.initial_sample_size, policy.config.seed
    )
    return [by_id[record.image_id] for record in records]


def label_initial_sample(images: Sequence[CorpusImage], policy: Policy, humans: Humans) -> list[CorpusImage]:
    """Iteration 0: people label the random initial sample, split into training labels and validation."""
    config = policy.config
    first = initial_sample(images, policy)
    for image in first:
        boxes = humans.label(image, prefill=None)
        if boxes is None:
            continue
        if is_validation(image.image_id, config.seed, config.validation_share):
            humans.state.validation[image.image_id] = boxes
        else:
            humans.state.labels[image.image_id] = Assigned(LabelSource.HUMAN, boxes)
    return first


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
    budget = config.human_budget_seconds
    first = label_initial_sample(images, policy, humans)
    progress(f"{policy.name}: initial sample of {len(first)} labelled, {state.seconds / 3600:.2f} h")

    results: list[IterationResult] = []
    model: TrainedModel | None = None
    predictions: dict[str, Prediction] = {}
    stop_reason = "iteration cap"
    for iteration in range(1, config.max_iterations + 1):
        unlabelled = state.unlabelled(images)
        if not unlabelled:
            stop_reason = "pool labelled"
            break
        if state.seconds >= budget:
            stop_reason = "budget spent"
            break
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

    left = state.unlabelled(images)
    for image in left:
        prediction = predictions.get(image.image_id)
        prefill = plain_boxes(prediction) if policy.prefilled_tasks and prediction is not None else None
        state.labels[image.image_id] = Assigned(LabelSource.HUMAN, humans.label_until_accepted(image, prefill))
    progress(f"{policy.name}: final pass over {len(left)} images, {state.seconds / 3600:.2f} h in all")
    return _totals(policy, images, state, results, len(first), len(left), stop_reason, time.monotonic() - started)


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

    routing = route_for_iteration(
        (predictions[image.image_id] for image in unlabelled), decision.threshold, (), config, iteration
    )
    candidates = routing.candidates
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
    observed = observed_seconds_per_answer(state.seconds, state.answers)
    tasks, _ = plan_human_tasks(
        [candidates],
        [routing.audit_candidates],
        gold_pool,
        config,
        iteration,
        remaining,
        observed,
        policy.prefilled_tasks,
    )
    human_ids = {task.image_id for task in tasks if task.purpose != HumanTaskPurpose.GOLD}
    auto = [prediction for prediction in routing.auto if prediction.image_id not in human_ids]
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
    result = IterationResult(
        iteration=iteration,
        train_images=len(train),
        train_seconds=model.seconds,
        model_reused=model.reused,
        inference_images=inferred,
        inference_seconds=inference_seconds,
        target=decision.target,
        threshold=decision.threshold,
        lower_bound=decision.lower_bound,
        statement=decision.statement,
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
    images: Sequence[CorpusImage],
    state: RunState,
    iterations: list[IterationResult],
    initial: int,
    final_pass: int,
    stop_reason: str,
    wall_seconds: float,
) -> PolicyResult:
    truth = {image.image_id: image.truth for image in images}
    labels = dict(state.labels)
    labels |= {image_id: Assigned(LabelSource.HUMAN, boxes) for image_id, boxes in state.validation.items()}
    auto = [image_miou(label.boxes, truth[i]) for i, label in labels.items() if label.source == LabelSource.AUTO]
    human = [image_miou(label.boxes, truth[i]) for i, label in labels.items() if label.source != LabelSource.AUTO]
    return PolicyResult(
        name=policy.name,
        summary=policy.summary,
        images=len(images),
        human_hours=state.seconds / 3600.0,
        human_images=len(human),
        auto_images=len(auto),
        auto_share=len(auto) / len(images),
        auto_miou=_mean(auto),
        human_miou=_mean(human),
        trained_iterations=len(iterations),
        initial_sample_images=initial,
        final_pass_images=final_pass,
        stop_reason=stop_reason,
        wall_seconds=wall_seconds,
        iterations=iterations,
        labels={image_id: label.boxes for image_id, label in labels.items()},
    )
