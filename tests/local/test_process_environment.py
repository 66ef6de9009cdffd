"""Per-invocation environment variables on the shared process environment."""

from __future__ import annotations

import os
import threading
import time

import pytest

from boxloop.local.process_environment import EnvironmentConflictError, SharedEnvironment


def test_variables_apply_inside_the_block_and_are_restored_after(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BOXLOOP_TEST_KEPT", "before")
    monkeypatch.delenv("BOXLOOP_TEST_NEW", raising=False)
    environment = SharedEnvironment()

    with environment.applied({"BOXLOOP_TEST_KEPT": "inside", "BOXLOOP_TEST_NEW": "x"}, owner="test"):
        assert os.environ["BOXLOOP_TEST_KEPT"] == "inside"
        assert os.environ["BOXLOOP_TEST_NEW"] == "x"

    assert os.environ["BOXLOOP_TEST_KEPT"] == "before"
    assert "BOXLOOP_TEST_NEW" not in os.environ


def test_agreeing_variables_share_and_a_conflicting_invocation_waits_for_them(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("BOXLOOP_TEST_NAME", raising=False)
    environment = SharedEnvironment(wait_seconds=10)
    first_entered, release_first = threading.Event(), threading.Event()
    seen: list[tuple[str, str]] = []

    def first() -> None:
        with environment.applied({"BOXLOOP_TEST_NAME": "a"}, owner="first"):
            first_entered.set()
            release_first.wait(5)
            seen.append(("first", os.environ["BOXLOOP_TEST_NAME"]))

    def conflicting() -> None:
        with environment.applied({"BOXLOOP_TEST_NAME": "b"}, owner="conflicting"):
            seen.append(("conflicting", os.environ["BOXLOOP_TEST_NAME"]))

    threads = [threading.Thread(target=first), threading.Thread(target=conflicting)]
    threads[0].start()
    first_entered.wait(5)
    with environment.applied({"BOXLOOP_TEST_NAME": "a"}, owner="agreeing"):
        seen.append(("agreeing", os.environ["BOXLOOP_TEST_NAME"]))
    threads[1].start()
    time.sleep(0.1)
    release_first.set()
    for thread in threads:
        thread.join(5)

    assert seen == [("agreeing", "a"), ("first", "a"), ("conflicting", "b")]


def test_a_nested_conflicting_invocation_fails_at_once() -> None:
    environment = SharedEnvironment(wait_seconds=10)

    with environment.applied({"BOXLOOP_TEST_NAME": "outer"}, owner="outer"):
        started = time.monotonic()
        with (
            pytest.raises(EnvironmentConflictError, match=r"inner runs nested .*BOXLOOP_TEST_NAME"),
            environment.applied({"BOXLOOP_TEST_NAME": "inner"}, owner="inner"),
        ):
            pass

    assert time.monotonic() - started < 1


def test_a_steady_holder_defers_the_restore_until_it_leaves(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("BOXLOOP_TEST_NAME", raising=False)
    environment = SharedEnvironment(wait_seconds=10)

    def invocation() -> None:
        with environment.applied({"BOXLOOP_TEST_NAME": "invocation"}, owner="invocation"):
            pass

    with environment.steady():
        thread = threading.Thread(target=invocation)
        thread.start()
        thread.join(5)
        # the invocation left, but a restore now would delete a name under code iterating os.environ
        assert os.environ["BOXLOOP_TEST_NAME"] == "invocation"
        assert environment.snapshot()["BOXLOOP_TEST_NAME"] == "invocation"

    assert "BOXLOOP_TEST_NAME" not in os.environ
    assert "BOXLOOP_TEST_NAME" not in environment.snapshot()


def test_steady_nests_inside_an_invocation_without_conflict() -> None:
    environment = SharedEnvironment(wait_seconds=10)

    with environment.applied({"BOXLOOP_TEST_NAME": "outer"}, owner="outer"), environment.steady():
        assert os.environ["BOXLOOP_TEST_NAME"] == "outer"

    assert "BOXLOOP_TEST_NAME" not in os.environ
