"""The simulated workforce: human answers made from known truth, with Ground Truth's error mix.

Used by local runs and benchmarks in place of A2I / Ground Truth workers (DESIGN.md,
"Human work"). For each true object a worker errs with probability
``error_rate × skill`` (each worker has a fixed skill multiplier, lognormal around 1
and normalised to mean 1 over the workforce). Of the erroneous objects 62% are
boundary errors (every edge moved by 8–30% of the box's side, clipped to the image),
23% are missed and 15% get a wrong class; with a single class there is no wrong class,
so errors split between boundary and missed in the same 62:23 proportion. Correct objects keep their class and get a
pixel or so of hand jitter. Time spent is ``labeling_time.expected_label_seconds``
times lognormal noise with mean 1.

Anchoring: a person adjusting pre-filled boxes keeps a share ``anchoring`` of the model's errors. Each true
object matched by a pre-filled box (one-to-one, IoU at least ``ANCHOR_MATCH_IOU``) gets the pre-filled box
instead of the person's own with probability ``anchoring``; each pre-filled box matching no true object (a false
positive) is kept with probability ``anchoring``; true objects the model missed are the person's own. These draws
come from their own random stream, so ``anchoring`` 0 (the default) gives exactly the boxes drawn without pre-fill.

Truth is keyed by whatever string the caller uses to name images; the local run
keys it by image id (the SHA-256 of the image's bytes, see
``corpus.load_truth(path, key="image_id")``) because tasks carry image ids.
Every answer is a pure function of ``(seed, image_key, attempt)``: answers do not
depend on the order in which images are asked for.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence

import numpy as np
from pydantic import BaseModel, Field
from scipy.optimize import linear_sum_assignment

from boxloop.config import LabelingConfig
from boxloop.labeling_time import PREFILLED_FACTOR, expected_label_seconds
from boxloop.models import Box
from boxloop.quality import boxes_to_xyxy, iou_matrix

ERROR_KIND_SHARES: dict[str, float] = {"boundary": 0.62, "missed": 0.23, "wrong_class": 0.15}
"""Ground Truth's observed mix of erroneous objects."""

BOUNDARY_SHIFT_RANGE = (0.08, 0.30)
"""A boundary error moves each edge by this fraction of the box side (random direction)."""

HAND_JITTER_FRACTION = 0.01
"""A correct box's edges move by about this fraction of its side (at least half a pixel)."""

ANCHOR_MATCH_IOU = 0.5
"""A pre-filled box stands for a true object when their IoU is at least this (the PASCAL VOC detection rule)."""

ANCHORING_STREAM = 1
"""Extra seed word of the anchoring draws' random stream (kept apart from the boxes' and times' draws)."""


class WorkerAnswer(BaseModel):
    """One simulated worker's answer for one image."""

    worker_id: str
    boxes: list[Box]
    time_spent_seconds: float = Field(ge=0.0)


def error_kind_shares(n_classes: int) -> dict[str, float]:
    """The error mix for ``n_classes`` classes: Ground Truth's, without wrong-class errors when there is one class."""
    if n_classes > 1:
        return dict(ERROR_KIND_SHARES)
    possible = {kind: share for kind, share in ERROR_KIND_SHARES.items() if kind != "wrong_class"}
    total = sum(possible.values())
    return {kind: share / total for kind, share in possible.items()}


def _key_number(image_key: str) -> int:
    return int.from_bytes(hashlib.sha256(image_key.encode("utf-8")).digest()[:8], "big")


def _plain(box: Box) -> Box:
    """A pre-filled box as a person's answer holds it (a scored box loses its score)."""
    return Box(**box.model_dump(include=set(Box.model_fields)))


def _moved(box: Box, moves: np.ndarray, width: int, height: int) -> Box:
    """``box`` with left/top/right/bottom moved by ``moves`` pixels, clipped to the image."""
    left, top, right, bottom = np.array(box.xyxy()) + moves
    left, right = sorted((float(np.clip(left, 0, width)), float(np.clip(right, 0, width))))
    top, bottom = sorted((float(np.clip(top, 0, height)), float(np.clip(bottom, 0, height))))
    return Box(
        class_id=box.class_id,
        left=round(left, 2),
        top=round(top, 2),
        width=round(right - left, 2),
        height=round(bottom - top, 2),
    )


class SimulatedWorkforce:
    """Answers labelling tasks from known truth with realistic errors and times."""

    def __init__(
        self,
        truth: Mapping[str, Sequence[Box]],
        *,
        n_classes: int,
        error_rate: float = 0.08,
        n_workers: int = 5,
        seed: int = 0,
        skill_spread: float = 0.35,
        time_spread: float = 0.3,
        anchoring: float = 0.0,
        prefill_factor: float = PREFILLED_FACTOR,
    ) -> None:
        """``truth`` maps image key to reference boxes; class ids must be below ``n_classes``.

        ``skill_spread`` and ``time_spread`` are the lognormal sigmas of the
        per-worker error multiplier and of the per-answer time noise; ``anchoring`` the share of
        pre-filled errors people keep; ``prefill_factor`` their time with pre-filled boxes as a share of drawing.
        """
        if not 0.0 <= error_rate <= 1.0:
            raise ValueError(f"error_rate must be in [0, 1], got {error_rate}")
        if not 0.0 <= anchoring <= 1.0:
            raise ValueError(f"anchoring must be in [0, 1], got {anchoring}")
        if not 0.0 < prefill_factor <= 1.0:
            raise ValueError(f"prefill_factor must be in (0, 1], got {prefill_factor}")
        if n_workers < 1:
            raise ValueError(f"n_workers must be at least 1, got {n_workers}")
        if n_classes < 1:
            raise ValueError(f"n_classes must be at least 1, got {n_classes}")
        for image_key, boxes in truth.items():
            for box in boxes:
                if box.class_id >= n_classes:
                    raise ValueError(
                        f"truth for image {image_key!r} has class_id {box.class_id} >= n_classes {n_classes}"
                    )
        self._truth = {image_key: list(boxes) for image_key, boxes in truth.items()}
        self._n_classes = n_classes
        self._error_kinds = error_kind_shares(n_classes)
        self._error_rate = error_rate
        self._seed = seed
        self._time_spread = time_spread
        self.anchoring = anchoring
        self.prefill_factor = prefill_factor
        skills = np.random.default_rng([seed, n_workers]).lognormal(0.0, skill_spread, size=n_workers)
        self.worker_ids = [f"sim-worker-{number:02d}" for number in range(1, n_workers + 1)]
        self.worker_skill = dict(zip(self.worker_ids, (skills / skills.mean()).tolist(), strict=True))
        """Error multiplier per worker (mean 1 over the workforce)."""

    @classmethod
    def from_config(cls, truth: Mapping[str, Sequence[Box]], config: LabelingConfig) -> SimulatedWorkforce:
        """The workforce a labelling configuration asks for (``workforce.simulated_*``, ``workforce.seed``)."""
        return cls(
            truth,
            n_classes=len(config.classes),
            error_rate=config.workforce.simulated_error_rate,
            n_workers=config.workforce.simulated_workers,
            seed=config.workforce.seed,
            anchoring=config.workforce.simulated_anchoring,
            prefill_factor=config.workforce.simulated_prefill_factor,
        )

    def _anchored(
        self, truth: list[Box], own: dict[int, Box], prefill: list[Box], rng: np.random.Generator
    ) -> list[Box]:
        """The answer when the person keeps each pre-filled error with probability ``anchoring``.

        ``own`` maps the index of each true box the person drew (their misses left out) to their box.
        """
        ious = iou_matrix(boxes_to_xyxy(truth), boxes_to_xyxy(prefill))
        rows, columns = linear_sum_assignment(ious, maximize=True) if ious.size else ([], [])
        match = {int(r): int(c) for r, c in zip(rows, columns, strict=True) if ious[r, c] >= ANCHOR_MATCH_IOU}
        keep = rng.random(len(truth)) < self.anchoring
        keep_false_positive = rng.random(len(prefill)) < self.anchoring
        boxes: list[Box] = []
        for index in range(len(truth)):
            if index in match and keep[index]:
                boxes.append(_plain(prefill[match[index]]))
            elif index in own:
                boxes.append(own[index])
        matched = set(match.values())
        kept = [_plain(box) for index, box in enumerate(prefill) if index not in matched and keep_false_positive[index]]
        return boxes + kept

    def worker_for(self, image_key: str, attempt: int = 0) -> str:
        """The worker who answers ``attempt`` for an image; attempts go to different workers."""
        return self.worker_ids[(_key_number(image_key) + attempt) % len(self.worker_ids)]

    def answer(
        self,
        image_key: str,
        width: int,
        height: int,
        prefill: Sequence[Box] | None = None,
        cluttered: bool | None = None,
        attempt: int = 0,
    ) -> WorkerAnswer:
        """One worker's answer for an image of ``width`` × ``height`` pixels.

        ``prefill`` (the model's boxes) shortens the time (adjusting is faster than drawing) and, with
        ``anchoring`` above 0, leaves some of the model's errors in the answer (module docstring).
        ``cluttered`` defaults to "more than one true object".
        ``attempt`` numbers repeated asks for the same image (consensus, re-queues).
        """
        if image_key not in self._truth:
            raise KeyError(f"no truth for image {image_key!r}")
        truth = self._truth[image_key]
        worker_id = self.worker_for(image_key, attempt)
        rng = np.random.default_rng([self._seed, _key_number(image_key), attempt])
        error_probability = min(1.0, self._error_rate * self.worker_skill[worker_id])
        kinds = list(self._error_kinds)
        own: dict[int, Box] = {}
        for index, true_box in enumerate(truth):
            erroneous = rng.random() < error_probability
            kind = kinds[rng.choice(len(kinds), p=list(self._error_kinds.values()))]
            if erroneous and kind == "missed":
                continue
            sides = np.array([true_box.width, true_box.height, true_box.width, true_box.height])
            if erroneous and kind == "boundary":
                moves = rng.uniform(*BOUNDARY_SHIFT_RANGE, size=4) * rng.choice([-1.0, 1.0], size=4) * sides
            else:
                moves = rng.normal(0.0, 1.0, size=4) * np.maximum(0.5, HAND_JITTER_FRACTION * sides)
            box = _moved(true_box, moves, width, height)
            if erroneous and kind == "wrong_class":
                wrong_class = (true_box.class_id + int(rng.integers(1, self._n_classes))) % self._n_classes
                box = box.model_copy(update={"class_id": wrong_class})
            own[index] = box
        is_cluttered = len(truth) > 1 if cluttered is None else cluttered
        expected = expected_label_seconds(
            n_objects=len(truth), prefilled=bool(prefill), cluttered=is_cluttered, prefill_factor=self.prefill_factor
        )
        noise = rng.lognormal(-(self._time_spread**2) / 2, self._time_spread)
        if prefill and self.anchoring > 0.0:
            anchored = np.random.default_rng([self._seed, _key_number(image_key), attempt, ANCHORING_STREAM])
            boxes = self._anchored(truth, own, list(prefill), anchored)
        else:
            boxes = list(own.values())
        return WorkerAnswer(worker_id=worker_id, boxes=boxes, time_spent_seconds=round(float(expected * noise), 2))
