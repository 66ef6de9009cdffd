"""The efficiency benchmark's summary over its part files: seeds, sizes, the oracle, a projection, sensitivity.

A part is one (corpus, size, seed, anchoring, pre-fill factor) run of every policy (``bench/efficiency.py``);
its ``policies`` are ``simulation.loop.PolicyResult`` dumps. Everything here is arithmetic on those numbers.

Projection to a larger corpus (``project_hours``), per policy and per seed, from the run at the largest size:
- measured there and held fixed: hours per initial-sample image (people, unaided), and hours per image of the
  rest of the corpus (everything after the initial sample: auto-labelled images cost 0, the others what people
  took, re-asks, audits, gold, finishing waves and final pass included), i.e. the auto-labelled share of the
  post-initial pool and people's seconds per image there;
- grows with the corpus: the initial sample, by each policy's own rule (Ground Truth-style: 10% of the corpus;
  boxloop and the oracle: ``boxloop.run_plan``'s rule under the run's budget; all-manual: none);
- uncertainty: the range of the per-seed projections (no statistical model; 5 seeds show the spread).
A larger initial sample trains a better first model, so holding the post-initial figures fixed favours neither
policy by design but is optimistic about neither either: it is a linear extrapolation of measured rates.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Sequence
from statistics import mean

import numpy as np

GOAL_HOURS_RATIO = 0.5
"""boxloop's human hours ≤ this × the Ground Truth-style policy's, at equal or better auto-label quality."""

PROJECTION_IMAGES = 500_000
PROJECTION_BUDGET_HOURS = 100.0
SENSITIVITY_PREFILL_FACTORS = (0.3, 0.5, 0.8)
MAX_PROJECTED_IMAGES = 100_000_000


def spread(values: Iterable[float | None]) -> dict[str, float | int | None]:
    """Mean, minimum and maximum of the values that are not None, and how many there were."""
    known = [float(v) for v in values if v is not None]
    if not known:
        return {"mean": None, "min": None, "max": None, "n": 0}
    return {"mean": mean(known), "min": min(known), "max": max(known), "n": len(known)}


def _text(stats: dict, digits: int = 2, scale: float = 1.0, unit: str = "") -> str:
    if stats["mean"] is None:
        return "–"
    low, high, middle = (scale * stats[key] for key in ("min", "max", "mean"))
    return f"{middle:.{digits}f}{unit} ({low:.{digits}f}–{high:.{digits}f})"


def _corpus_text(stats: dict) -> str:
    """A corpus-size spread with the search's cap shown as "no limit" (no image after the initial sample costs
    people anything, so hours do not grow with the corpus)."""
    if stats["mean"] is None:
        return "–"
    low, high, middle = (
        "no limit" if stats[key] >= MAX_PROJECTED_IMAGES else f"{stats[key]:,.0f}" for key in ("min", "max", "mean")
    )
    return middle if low == high else f"{middle} ({low}–{high})"


def policy_runs(parts: Sequence[dict], name: str) -> list[dict]:
    """The named policy's result in each part (parts without it are skipped)."""
    return [p for part in parts for p in part["policies"] if p["name"] == name]


def repriced_hours(policy: dict, prefill_factor: float) -> float:
    """The policy's hours had adjusting pre-filled boxes taken ``prefill_factor`` of the drawing time.

    Exact for the time model (an answer's seconds are its expected seconds times noise that does not depend on the
    factor) as long as the budget never bound, which ``budget_bound`` checks: the same answers, re-priced.
    """
    return policy["human_hours"] + policy["prefilled_hours"] * (prefill_factor / policy["prefill_factor"] - 1.0)


def budget_bound(policy: dict) -> bool:
    """Whether the budget could have shaped the run (its hours reached half the budget)."""
    return policy["human_hours"] >= 0.5 * policy["budget_hours"]


def bound_margin(policy: dict) -> float | None:
    """Realised auto-label mIoU minus the stated lower bound, the smallest over the iterations that auto-labelled."""
    margins = [
        it["auto_miou"] - it["lower_bound"]
        for it in policy["iterations"]
        if it["auto_images"] and it["lower_bound"] is not None and it["auto_miou"] is not None
    ]
    return min(margins) if margins else None


def _ratio(numerator: float | None, denominator: float | None) -> float | None:
    return None if numerator is None or not denominator else numerator / denominator


def size_summary(parts: Sequence[dict], policies: Sequence[str], hours: Callable[[dict], float]) -> dict:
    """Per policy at one size: hours, auto-labelled share, realised auto mIoU (mean and range over the seeds);
    boxloop ÷ Ground Truth-style hours with the verdict; boxloop's share ÷ the oracle's; the bound's margin."""
    rows = {
        name: {
            "human_hours": spread(hours(p) for p in policy_runs(parts, name)),
            "auto_share": spread(p["auto_share"] for p in policy_runs(parts, name)),
            "auto_miou": spread(p["auto_miou"] for p in policy_runs(parts, name)),
            "seeds": len(policy_runs(parts, name)),
        }
        for name in policies
    }
    summary: dict = {"policies": rows}
    by_seed = {part["seed"]: {p["name"]: p for p in part["policies"]} for part in parts}
    if {"boxloop", "ground-truth-style"} <= set(policies):
        ours, theirs = rows["boxloop"], rows["ground-truth-style"]
        ratio = _ratio(ours["human_hours"]["mean"], theirs["human_hours"]["mean"])
        per_seed = spread(_ratio(hours(run["boxloop"]), hours(run["ground-truth-style"])) for run in by_seed.values())
        overlap = (
            ours["human_hours"]["max"] >= theirs["human_hours"]["min"]
            and theirs["human_hours"]["max"] >= ours["human_hours"]["min"]
        )
        quality_ok = (
            theirs["auto_miou"]["mean"] is None or (ours["auto_miou"]["mean"] or 0.0) >= theirs["auto_miou"]["mean"]
        )
        summary["ratio"] = {
            "of_means": ratio,
            "per_seed": per_seed,
            "hours_ranges_overlap": overlap,
            "quality_at_least_theirs": quality_ok,
            "met": ratio is not None and ratio <= GOAL_HOURS_RATIO and quality_ok,
        }
    if {"boxloop", "oracle"} <= set(policies):
        summary["oracle"] = {
            "share_ratio": spread(
                _ratio(run["boxloop"]["auto_share"], run["oracle"]["auto_share"]) for run in by_seed.values()
            ),
            "bound_margin": spread(bound_margin(run["boxloop"]) for run in by_seed.values()),
        }
    return summary


def _fixed_rates(policy: dict) -> tuple[float, float] | None:
    """Hours per initial-sample image and hours per image of the rest of the corpus, as measured (None when the
    initial sample was the whole corpus, so the rest was never measured)."""
    initial = policy["initial_sample_images"]
    rest = policy["images"] - initial
    if rest <= 0:
        return None
    per_initial = policy["initial_sample_hours"] / initial if initial else 0.0
    return per_initial, (policy["human_hours"] - policy["initial_sample_hours"]) / rest


def project_hours(policy: dict, n_images: int, initial_rule: Callable[[int], int]) -> float | None:
    """The policy's hours for ``n_images`` by the method in the module docstring (None when it cannot say)."""
    rates = _fixed_rates(policy)
    if rates is None:
        return None
    per_initial, per_rest = rates
    sample = min(initial_rule(n_images), n_images)
    return sample * per_initial + (n_images - sample) * per_rest


def largest_within(policy: dict, budget_hours: float, initial_rule: Callable[[int], int]) -> int | None:
    """The largest corpus whose projected hours fit ``budget_hours`` (bisection; hours grow with the corpus), at most
    ``MAX_PROJECTED_IMAGES``; None when the run cannot be projected."""
    low, high = 0, MAX_PROJECTED_IMAGES
    if _fixed_rates(policy) is None:
        return None
    if project_hours(policy, high, initial_rule) <= budget_hours:
        return high
    while high - low > 1:
        middle = (low + high) // 2
        low, high = (middle, high) if project_hours(policy, middle, initial_rule) <= budget_hours else (low, middle)
    return low


def linear_fit(points: Sequence[tuple[int, float]]) -> tuple[float, float] | None:
    """Least-squares hours = a + b·N over (N, hours) points (None with fewer than two sizes)."""
    if len({n for n, _ in points}) < 2:
        return None
    b, a = np.polyfit([n for n, _ in points], [h for _, h in points], 1)
    return float(a), float(b)


def projection(
    parts: Sequence[dict], policies: Sequence[str], initial_rules: dict[str, Callable[[int], int]]
) -> dict[str, dict]:
    """Per policy: the projected hours at ``PROJECTION_IMAGES`` and the largest corpus within the budget (mean and
    range over the seeds run at the largest size), the same projection from every size run (``by_size``: whether it
    drifts as the measured corpus grows), and the linear fit over all sizes as a check."""
    sizes = sorted({part["size"] for part in parts})
    at_largest = [part for part in parts if part["size"] == sizes[-1]]
    result = {}
    for name in policies:
        runs = policy_runs(at_largest, name)
        fit = linear_fit([(p["images"], p["human_hours"]) for p in policy_runs(parts, name)])
        by_size = {
            str(size): spread(
                project_hours(p, PROJECTION_IMAGES, initial_rules[name])
                for p in policy_runs([part for part in parts if part["size"] == size], name)
            )
            for size in sizes
        }
        result[name] = {
            "from_size": sizes[-1],
            "hours": by_size[str(sizes[-1])],
            "by_size": by_size,
            "largest_corpus_within_budget": spread(
                largest_within(p, PROJECTION_BUDGET_HOURS, initial_rules[name]) for p in runs
            ),
            "initial_sample_at_projection": initial_rules[name](PROJECTION_IMAGES),
            "linear_fit_hours": None if fit is None else fit[0] + fit[1] * PROJECTION_IMAGES,
        }
    return result


def tables(summary: dict, policies: Sequence[str]) -> str:
    """The summary as Markdown tables."""
    lines = []
    sizes = sorted(summary["sizes"], key=int)
    lines += ["| images | policy | seeds | human hours, mean (range) | auto-labelled % | realised auto mIoU |"]
    lines += ["|---:|---|---:|---:|---:|---:|"]
    for size in sizes:
        for name in policies:
            row = summary["sizes"][size]["policies"][name]
            lines.append(
                f"| {int(size):,} | {name} | {row['seeds']} | {_text(row['human_hours'])} "
                f"| {_text(row['auto_share'], 1, 100.0)} | {_text(row['auto_miou'], 3)} |"
            )
    lines += ["", "| images | boxloop ÷ GT-style hours (of means) | per seed | hours ranges overlap | verdict |"]
    lines += ["|---:|---:|---:|---|---|"]
    for size in sizes:
        ratio = summary["sizes"][size].get("ratio")
        if ratio and ratio["of_means"] is not None:
            verdict = "MET" if ratio["met"] else "MISSED"
            lines.append(
                f"| {int(size):,} | {ratio['of_means']:.2f}× | {_text(ratio['per_seed'])} "
                f"| {'yes' if ratio['hours_ranges_overlap'] else 'no'} | {verdict} (goal ≤ {GOAL_HOURS_RATIO}×, "
                f"auto mIoU {'≥' if ratio['quality_at_least_theirs'] else '<'} theirs) |"
            )
    if any("oracle" in summary["sizes"][size] for size in sizes):
        lines += ["", "| images | boxloop auto share ÷ oracle's | realised auto mIoU − stated bound (boxloop) |"]
        lines += ["|---:|---:|---:|"]
        for size in sizes:
            oracle = summary["sizes"][size].get("oracle")
            if oracle:
                lines.append(f"| {int(size):,} | {_text(oracle['share_ratio'])} | {_text(oracle['bound_margin'], 3)} |")
    lines += ["", "| policy | " + " | ".join(f"hours at {int(s):,}" for s in sizes) + " | hours per 1,000 images |"]
    lines += ["|---|" + "---:|" * (len(sizes) + 1)]
    for name in policies:
        means = [summary["sizes"][s]["policies"][name]["human_hours"]["mean"] for s in sizes]
        fit = linear_fit([(int(s), m) for s, m in zip(sizes, means, strict=True) if m is not None])
        slope = "–" if fit is None else f"{1000 * fit[1]:.2f}"
        lines.append(f"| {name} | " + " | ".join("–" if m is None else f"{m:.2f}" for m in means) + f" | {slope} |")
    lines += [
        "",
        f"| policy | initial sample at {PROJECTION_IMAGES:,} | projected hours, mean (range over seeds) "
        f"| fits {PROJECTION_BUDGET_HOURS:.0f} h? | largest corpus within {PROJECTION_BUDGET_HOURS:.0f} h "
        "| linear fit a + b·N (check) |",
        "|---|---:|---:|---|---:|---:|",
    ]
    for name, row in summary["projection"].items():
        hours, within = row["hours"], row["largest_corpus_within_budget"]
        fits = "–" if hours["mean"] is None else ("yes" if hours["max"] <= PROJECTION_BUDGET_HOURS else "no")
        fit = "–" if row["linear_fit_hours"] is None else f"{row['linear_fit_hours']:.0f} h"
        lines.append(
            f"| {name} | {row['initial_sample_at_projection']:,} | {_text(hours, 0, unit=' h')} | {fits} "
            f"| {_corpus_text(within)} | {fit} |"
        )
    lines += ["", "| policy | " + " | ".join(f"projected from {int(s):,} (seeds)" for s in sizes) + " |"]
    lines += ["|---|" + "---:|" * len(sizes)]
    for name, row in summary["projection"].items():
        cells = [row["by_size"][s] for s in sizes]
        lines.append(f"| {name} | " + " | ".join(f"{_text(c, 0, unit=' h')} ({c['n']})" for c in cells) + " |")
    lines += ["", "| pre-fill factor | " + " | ".join(f"boxloop ÷ GT-style at {int(s):,}" for s in sizes) + " |"]
    lines += ["|---:|" + "---:|" * len(sizes)]
    for factor, by_size in summary["prefill_sensitivity"].items():
        cells = []
        for size in sizes:
            ratio = by_size.get(size)
            cells.append("–" if ratio is None or ratio["of_means"] is None else _verdict_cell(ratio))
        lines.append(f"| {factor} | " + " | ".join(cells) + " |")
    if summary["anchoring_sensitivity"]:
        lines += ["", "| anchoring | " + " | ".join(f"boxloop ÷ GT-style at {int(s):,}" for s in sizes) + " |"]
        lines += ["|---:|" + "---:|" * len(sizes)]
        for anchoring, by_size in summary["anchoring_sensitivity"].items():
            cells = [
                "not run" if by_size.get(s) is None or by_size[s]["of_means"] is None else _verdict_cell(by_size[s])
                for s in sizes
            ]
            lines.append(f"| {anchoring} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _verdict_cell(ratio: dict) -> str:
    return f"{ratio['of_means']:.2f}× {'MET' if ratio['met'] else 'MISSED'}"


UNAIDED_POLICIES = ("all-manual", "ground-truth-style")
"""Policies whose people never see pre-filled boxes: anchoring cannot change their runs."""


def with_unaided_policies(part: dict, main: Sequence[dict]) -> dict:
    """``part`` with the unaided policies it lacks taken from the main part of the same size and seed (an anchoring
    run need not repeat them)."""
    have = {policy["name"] for policy in part["policies"]}
    same = [m for m in main if m["size"] == part["size"] and m["seed"] == part["seed"]]
    borrowed = [p for m in same[:1] for p in m["policies"] if p["name"] in UNAIDED_POLICIES and p["name"] not in have]
    return {**part, "policies": [*part["policies"], *borrowed]}


def summarize(
    parts: Sequence[dict],
    policies: Sequence[str],
    anchoring: float,
    initial_rules: dict[str, Callable[[int], int]],
) -> dict:
    """Everything ``tables`` prints, from the parts: the main figures at ``anchoring`` and the sensitivities."""
    main = [part for part in parts if math.isclose(part["anchoring"], anchoring)]
    if not main:
        raise ValueError(f"no part file at anchoring {anchoring}: run the parts first")
    sizes = sorted({part["size"] for part in main})
    by_size = {str(size): [part for part in main if part["size"] == size] for size in sizes}
    recorded = {
        str(size): size_summary(size_parts, policies, lambda p: p["human_hours"])
        for size, size_parts in by_size.items()
    }
    prefill = {
        f"{factor:g}": {
            size: size_summary(size_parts, policies, lambda p, f=factor: repriced_hours(p, f)).get("ratio")
            for size, size_parts in by_size.items()
        }
        for factor in SENSITIVITY_PREFILL_FACTORS
    }
    anchorings = sorted({part["anchoring"] for part in parts})
    anchoring_rows = {}
    for value in anchorings:
        rows = {}
        for size in sizes:
            runs = [
                with_unaided_policies(part, main)
                for part in parts
                if part["size"] == size and math.isclose(part["anchoring"], value)
            ]
            present = [name for name in policies if runs and all(len(policy_runs([r], name)) == 1 for r in runs)]
            rows[str(size)] = size_summary(runs, present, lambda p: p["human_hours"]).get("ratio") if runs else None
        anchoring_rows[f"{value:g}"] = rows
    return {
        "anchoring": anchoring,
        "sizes": recorded,
        "projection": projection(main, policies, initial_rules),
        "prefill_sensitivity": prefill,
        "prefill_repriced": True,
        "budget_bound_runs": sum(budget_bound(p) for part in main for p in part["policies"]),
        "anchoring_sensitivity": anchoring_rows if len(anchorings) > 1 else {},
    }
