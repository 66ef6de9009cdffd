"""Turning heatmap and box-head outputs into scored boxes, for a whole batch at once on the model's device."""

from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class Detections:
    """A batch's detections in input-canvas pixels, K slots per image, best first within each image:
    boxes (B, K, 4) xyxy, scores (B, K), classes (B, K), and ``valid`` (B, K): the slots that hold a detection
    (score at or above the decoding floor and kept by NMS)."""

    boxes: torch.Tensor
    scores: torch.Tensor
    classes: torch.Tensor
    valid: torch.Tensor

    def rows(self, start: int, stop: int) -> Detections:
        """The detections of images ``start`` to ``stop`` (exclusive)."""
        return Detections(
            self.boxes[start:stop], self.scores[start:stop], self.classes[start:stop], self.valid[start:stop]
        )

    def first_slots(self, count: int) -> Detections:
        """The first ``count`` slots of every image: slots are best first, so they hold every detection whose
        score is at least the ``count``-th best of the image that has the most."""
        return Detections(self.boxes[:, :count], self.scores[:, :count], self.classes[:, :count], self.valid[:, :count])


def pairwise_iou(first: torch.Tensor, second: torch.Tensor) -> torch.Tensor:
    """IoU of every box in ``first`` (B, N, 4) with every box in ``second`` (B, M, 4), xyxy: (B, N, M)."""
    left_first, top_first, right_first, bottom_first = first.movedim(-1, 0).contiguous()[..., None]
    left_second, top_second, right_second, bottom_second = second.movedim(-1, 0).contiguous()[:, :, None, :]
    area_first = (right_first - left_first) * (bottom_first - top_first)
    area_second = (right_second - left_second) * (bottom_second - top_second)
    widths = (torch.minimum(right_first, right_second) - torch.maximum(left_first, left_second)).clamp_(min=0)
    heights = (torch.minimum(bottom_first, bottom_second) - torch.maximum(top_first, top_second)).clamp_(min=0)
    intersection = widths.mul_(heights)
    return intersection / (area_first + area_second - intersection)


def _voted_boxes(
    logits: torch.Tensor, distances: torch.Tensor, stride: int, classes: torch.Tensor, cells: torch.Tensor
) -> torch.Tensor:
    """Refined boxes (B, K, 4) at the peaks: the heat-weighted mean of the boxes decoded in each
    peak's 3×3 neighbourhood (its own class's heat), which steadies the edges of every box.

    Only the nine cells around each peak are read; cells beyond the map weigh nothing."""
    batch, _, height, width = logits.shape
    offsets = torch.tensor([[-1, -1, -1, 0, 0, 0, 1, 1, 1], [-1, 0, 1, -1, 0, 1, -1, 0, 1]], device=cells.device)
    neighbour_rows = (cells // width)[:, None, :] + offsets[0, :, None]  # (B, 9, K)
    neighbour_columns = (cells % width)[:, None, :] + offsets[1, :, None]
    rows, columns = neighbour_rows.clamp(0, height - 1), neighbour_columns.clamp(0, width - 1)
    inside = (rows == neighbour_rows) & (columns == neighbour_columns)
    neighbours = rows * width + columns
    heat_index = (classes * (height * width))[:, None, :] + neighbours
    heat = torch.sigmoid(torch.gather(logits.flatten(1), 1, heat_index.flatten(1))).view_as(neighbours) * inside
    sides = torch.gather(distances.flatten(2), 2, neighbours.flatten(1)[:, None, :].expand(-1, 4, -1)).float()
    centres = torch.stack([neighbour_columns, neighbour_rows], dim=1).add(0.5).mul_(stride).repeat(1, 2, 1, 1)
    edge_signs = torch.tensor([-1.0, -1.0, 1.0, 1.0], device=cells.device)[:, None, None]
    boxes = centres + sides.view(batch, 4, *neighbours.shape[1:]) * edge_signs  # (B, 4, 9, K): x1, y1, x2, y2
    weighted = (boxes * heat[:, None]).sum(dim=2) / 9
    total = (heat.sum(dim=1) / 9).clamp(min=1e-6)
    return (weighted / total[:, None]).transpose(1, 2).contiguous()


_NOT_A_PEAK = 1e30
"""Subtracted from every cell that is not a peak, which puts it below every peak (its score becomes 0)."""

_DIRECT_TOP_K_CELLS = 256
"""Maps with at most this many cells per class (or an odd side) run top-k on the map itself."""


def _maximum_of_three_into(values: torch.Tensor, pairs: torch.Tensor, out: torch.Tensor, step: int, size: int) -> None:
    """Write into ``out`` the maximum of each cell of the flat, contiguous ``values`` and its two neighbours
    ``step`` apart along a dimension of ``size`` cells (cells beyond its edges do not count); ``pairs`` is scratch,
    and ``out`` may be ``values`` itself (``values`` is read only into ``pairs``).

    Whole-tensor shifted maxima read contiguous memory; the pairs that straddle the dimension's edge only reach
    the first and last cells along it, which are then taken from the pair inside the edge."""
    if size == 1:
        out.copy_(values)
        return
    torch.maximum(values[:-step], values[step:], out=pairs[:-step])
    torch.maximum(pairs[: -2 * step], pairs[step:-step], out=out[step:-step])
    along, pairs_along = out.view(-1, size, step), pairs.view(-1, size, step)
    along[:, 0].copy_(pairs_along[:, 0])
    along[:, size - 1].copy_(pairs_along[:, size - 2])


def _neighbourhood_maximum(values: torch.Tensor) -> torch.Tensor:
    """The maximum over each cell's 3×3 neighbourhood of contiguous ``values`` (B, C, H, W), as
    ``max_pool2d(values, 3, 1, 1)`` gives it, from four elementwise maxima in two buffers (the pooling kernel is
    several times slower on a CPU)."""
    height, width = values.shape[2:]
    flat = values.view(-1)
    pairs, result = torch.empty_like(flat), torch.empty_like(flat)
    _maximum_of_three_into(flat, pairs, result, 1, width)  # along rows
    _maximum_of_three_into(result, pairs, result, width, height)  # along columns, in place
    return result.view_as(values)


def _top_cells(values: torch.Tensor, count: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The ``count`` largest values of each image's map (B, C, H, W), largest first, and their flat indices into
    (C, H, W); ``count`` is at most C·H·W.

    The ``count`` largest values lie in the ``count`` 2×2 blocks with the largest maxima (each block ranked above
    a value holds a larger one), so top-k runs on the map of block maxima, recursively, then on the four cells
    of each chosen block: a few small top-k instead of one over the whole map.
    """
    _, _, height, width = values.shape
    if height % 2 or width % 2 or height * width <= _DIRECT_TOP_K_CELLS:
        return values.flatten(1).topk(count, dim=1)
    pairs = torch.maximum(values[..., 0::2, :], values[..., 1::2, :])  # rows first: contiguous reads
    blocks = torch.maximum(pairs[..., 0::2], pairs[..., 1::2])
    _, block_index = _top_cells(blocks, min(count, blocks[0].numel()))
    channel, block = block_index // (height * width // 4), block_index % (height * width // 4)
    top_left = channel * (height * width) + block // (width // 2) * (2 * width) + block % (width // 2) * 2
    corners = torch.tensor([0, 1, width, width + 1], device=values.device)
    candidates = (top_left[..., None] + corners).flatten(1)
    top, chosen = torch.gather(values.flatten(1), 1, candidates).topk(count, dim=1)
    return top, torch.gather(candidates, 1, chosen)


def _top_peaks(logits: torch.Tensor, count: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The ``count`` highest 3×3 peaks of each image's logits (B, C, H, W), best first: their logits (B, count)
    and flat indices into (C, H, W); slots beyond an image's peaks hold a logit of about −1e30."""
    not_peak = _neighbourhood_maximum(logits).sub_(logits).sign_()  # 0.0 at a peak, 1.0 elsewhere
    return _top_cells(torch.sub(logits, not_peak, alpha=_NOT_A_PEAK, out=not_peak), count)


def same_class_pairs(
    first_classes: torch.Tensor, second_classes: torch.Tensor, first_mask: torch.Tensor, second_mask: torch.Tensor
) -> torch.Tensor:
    """(B, N, M) float: 1.0 where slot n of the first (B, N) and slot m of the second (B, M) hold the same class
    and both are set in their masks, else 0.0.

    Pair masks here are floats that multiply: on a CPU, boolean comparisons, ``where`` and reductions over
    (B, K, K) booleans cost several times the float arithmetic.
    """
    first = torch.where(first_mask, first_classes, -1).to(torch.float32)  # an unmasked slot matches nothing
    second = torch.where(second_mask, second_classes, -2).to(torch.float32)
    return (first[:, :, None] - second[:, None, :]).abs_().sign_().neg_().add_(1.0)


def _kept_by_nms(boxes: torch.Tensor, classes: torch.Tensor, candidates: torch.Tensor, iou: float) -> torch.Tensor:
    """(B, K) mask of the candidates that greedy per-class NMS keeps, for the whole batch at once.

    Slots are best first, so a candidate is dropped when a kept, earlier candidate of its class overlaps it by
    IoU > ``iou``. Iterating "kept = candidates not overlapped by a kept earlier one" from all candidates
    reaches greedy NMS's result exactly (Cluster-NMS, Zheng et al. 2020), in a few (B, K, K) steps instead of
    one NMS per image, or one over the whole batch, whose cost grows with the square of all its boxes.
    """
    slots = boxes.shape[1]
    earlier = torch.ones(slots, slots, device=boxes.device).triu_(diagonal=1)
    overlapping = (pairwise_iou(boxes, boxes).nan_to_num_(0.0) - iou).sign_().clamp_(min=0.0)  # 1.0: IoU > iou
    suppresses = overlapping.mul_(same_class_pairs(classes, classes, candidates, candidates)).mul_(earlier)
    allowed = candidates.to(torch.float32)
    kept = allowed
    for _ in range(slots):
        overlapped = torch.bmm(kept[:, None, :], suppresses).squeeze(1)  # kept earlier slots overlapping each slot
        updated = allowed - allowed * overlapped.sign()
        if torch.equal(updated, kept):
            break
        kept = updated
    return kept.bool()


def decode_batch(
    heatmap_logits: torch.Tensor,
    distances: torch.Tensor,
    stride: int,
    max_detections: int,
    nms_iou: float,
    min_score: float,
) -> Detections:
    """Peaks of the class heatmaps (3×3 max-pool), top-k, boxes from the edge distances, per-class NMS.

    Returns the batch's ``Detections`` on the outputs' device; ``valid`` marks the slots with score ≥ ``min_score``
    that NMS kept.
    """
    _, num_classes, height, width = heatmap_logits.shape
    logits = heatmap_logits.float().contiguous()  # peaks and ranks on logits: the sigmoid is monotonic
    top_logits, flat_index = _top_peaks(logits, min(max_detections, num_classes * height * width))
    scores = torch.sigmoid(top_logits)
    classes = flat_index // (height * width)
    cells = flat_index % (height * width)
    boxes = _voted_boxes(logits, distances, stride, classes, cells).float()
    valid = _kept_by_nms(boxes, classes, scores >= min_score, nms_iou)
    return Detections(boxes, scores, classes, valid)
