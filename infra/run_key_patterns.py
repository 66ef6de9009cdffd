"""Object key patterns for grants on run data: ``boxloop.layout``'s keys with ``*`` for what is chosen at run time.

Run ids, iterations and manifest versions are chosen at run time, so a role that serves every run names
``runs/*/…``; the rest of each pattern is the layout's own, so a grant covers exactly one kind of file.
"""

from __future__ import annotations

from collections.abc import Callable

from boxloop.layout import REVIEWED_ANSWER_FOLDERS, RunLayout, version_name

ANY_RUN = RunLayout(bucket="", run_id="*")
"""The run layout with ``*`` for the run id."""


def every_iteration(key_of_iteration: Callable[[int], str]) -> str:
    """The pattern of ``key_of_iteration`` for every run and iteration (``runs/*/iterations/*/…``)."""
    return key_of_iteration(0).replace(ANY_RUN.iteration(0), f"{ANY_RUN.iterations}*/", 1)


def every_version(key_of_version: Callable[[int], str]) -> str:
    """The pattern of everything under ``key_of_version``'s folder for every run and version."""
    return f"{key_of_version(0).split(version_name(0), 1)[0]}*"


HUMAN_TASKS = (every_iteration(ANY_RUN.tasks), every_iteration(ANY_RUN.selection))
"""A human batch: its tasks file and the record of why those images were chosen."""

REVIEWED_ANSWERS = tuple(
    f"{every_iteration(lambda iteration, kind=kind: ANY_RUN.reviewed_answers(iteration, kind))}*"
    for kind in REVIEWED_ANSWER_FOLDERS
)
"""The reviewed answers of every kind (labels, rejected, gold, unlabellable), one document per image."""
