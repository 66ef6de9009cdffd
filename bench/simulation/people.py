"""The people's side of a simulated run: the workforce behind QC, the initial sample and the waves that finish.

What the product does (``SelectWaveForPeople``, ``SplitTrainValidation``, DESIGN.md "The loop"):
- the random initial sample (``boxloop.initial_sample.random_sample``) goes to people in waves whose expected
  seconds fit what is left of the budget (``boxloop.people_waves.plan_people_wave``) when the policy has budget
  waves, else in one batch;
- its validation set is an exact count (``boxloop.validation_split.validation_count``) of the labelled
  initial-sample images in keyed-random order (``validation_ids``), so an image QC rejected is replaced by the
  next one in that order;
- once the loop stops learning, the unlabelled images nobody was sent yet go to people unaided in budget-sized
  waves (purpose ``remaining``) until pool or budget runs out.

What only the benchmark does: ``final_pass`` labels whatever is still unlabelled (beyond the budget, or rejected
by QC), so each policy's hours are the cost of a *fully* labelled corpus.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field

from boxloop.initial_sample import random_sample
from boxloop.models import Box, LabelSource
from boxloop.people_waves import plan_people_wave
from boxloop.qc import check_rules
from boxloop.validation_split import validation_count, validation_ids
from boxloop.workforce import SimulatedWorkforce
from simulation.corpus_images import CorpusImage
from simulation.policy import Policy

MAX_ATTEMPTS = 3
"""Asks per image before a rejected image goes back to the pool (each ask is charged)."""

FINAL_PASS_ROUNDS = 10
"""Rounds of ``MAX_ATTEMPTS`` asks the final pass makes before it gives up on an image with an error."""


@dataclass
class Assigned:
    """An image's label in a run and where it came from."""

    source: LabelSource
    boxes: list[Box]


@dataclass
class RunState:
    """Labels, validation labels, human seconds (per answer, split by pre-fill) and gold scores of a run so far."""

    labels: dict[str, Assigned] = field(default_factory=dict)
    validation: dict[str, list[Box]] = field(default_factory=dict)
    seconds: float = 0.0
    answer_seconds: list[float] = field(default_factory=list)
    prefilled_seconds: float = 0.0
    """Seconds of answers given with pre-filled boxes (a different pre-fill factor re-prices only these)."""
    gold_scores: list[float] = field(default_factory=list)
    used_gold: set[str] = field(default_factory=set)

    @property
    def answers(self) -> int:
        """Answers charged so far."""
        return len(self.answer_seconds)

    def unlabelled(self, images: Sequence[CorpusImage]) -> list[CorpusImage]:
        """The images with neither a label nor a validation label yet."""
        return [i for i in images if i.image_id not in self.labels and i.image_id not in self.validation]


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
            self.state.answer_seconds.append(answer.time_spent_seconds)
            if prefill:
                self.state.prefilled_seconds += answer.time_spent_seconds
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


def initial_sample(images: Sequence[CorpusImage], policy: Policy) -> list[CorpusImage]:
    """``SelectInitialSample``'s keyed-random sample of the pool, in draw order."""
    by_id = {image.image_id: image for image in images}
    records = random_sample(
        [[image.record() for image in images]], policy.config.initial_sample_size, policy.config.seed
    )
    return [by_id[record.image_id] for record in records]


def _remaining(policy: Policy, state: RunState) -> float:
    return max(policy.config.human_budget_seconds - state.seconds, 0.0)


def label_initial_sample(images: Sequence[CorpusImage], policy: Policy, humans: Humans) -> list[CorpusImage]:
    """Iteration 0: people label the random initial sample (in budget waves when the policy has them); the exact
    validation count of its labelled images becomes the validation set, the rest training labels."""
    config, state = policy.config, humans.state
    first = initial_sample(images, policy)
    by_id = {image.image_id: image for image in first}
    waves = [first]
    if policy.budget_waves:
        records = [image.record() for image in first]
        sent: set[str] = set()
        waves = []
        while len(sent) < len(first):
            tasks, _ = plan_people_wave(
                initial_sample=records,
                pool=(),
                sent_ids=sent,
                labelled_ids=set(),
                config=config,
                iteration=len(waves),
                remaining=_remaining(policy, state),
                answer_seconds=state.answer_seconds,
            )
            if not tasks:
                break
            sent |= {task.image_id for task in tasks}
            waves.append([by_id[task.image_id] for task in tasks])
            _label_unaided(waves[-1], humans)
    else:
        _label_unaided(first, humans)
    labelled = [image.image_id for image in first if image.image_id in state.labels]
    for image_id in validation_ids(labelled, validation_count(config), config.seed):
        state.validation[image_id] = state.labels.pop(image_id).boxes
    return first


def _label_unaided(images: Sequence[CorpusImage], humans: Humans) -> int:
    """People label ``images`` from scratch; returns how many were accepted."""
    accepted = 0
    for image in images:
        boxes = humans.label(image, prefill=None)
        if boxes is not None:
            humans.state.labels[image.image_id] = Assigned(LabelSource.HUMAN, boxes)
            accepted += 1
    return accepted


def finish_with_people(images: Sequence[CorpusImage], policy: Policy, humans: Humans) -> int:
    """The product's finishing waves: unlabelled images nobody was sent, unaided, while the budget lasts.

    Returns how many images people finished this way.
    """
    state = humans.state
    by_id = {image.image_id: image for image in images}
    finished, waves = 0, 0
    while True:
        tasks, _ = plan_people_wave(
            initial_sample=(),
            pool=(image.record() for image in state.unlabelled(images)),
            sent_ids=set(humans.asks),
            labelled_ids=set(),
            config=policy.config,
            iteration=waves,
            remaining=_remaining(policy, state),
            answer_seconds=state.answer_seconds,
        )
        if not tasks:
            return finished
        waves += 1
        finished += _label_unaided([by_id[task.image_id] for task in tasks], humans)


def final_pass(left: Sequence[CorpusImage], prefills: dict[str, list[Box]], humans: Humans) -> None:
    """The benchmark's last step: people label every image in ``left`` (pre-filled where ``prefills`` has boxes)."""
    for image in left:
        boxes = humans.label_until_accepted(image, prefills.get(image.image_id))
        humans.state.labels[image.image_id] = Assigned(LabelSource.HUMAN, boxes)
