"""Fixtures for the browser tests of the labelling page: the bundled page, Debian's Chromium, a fake API per test."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.web.fake_api import FakeLabellingApi, FakeTask, corpus_scene

REPO = Path(__file__).resolve().parents[2]
WEB = REPO / "web"
DIST = WEB / "dist"
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
VIEWPORT = {"width": 1440, "height": 900}


def _dist_is_stale() -> bool:
    built = [DIST / name for name in ("index.html", "app.js", "app.css")]
    if not all(path.is_file() for path in built):
        return True
    sources = [WEB / "index.html", WEB / "build.mjs", *(WEB / "src").iterdir()]
    return max(p.stat().st_mtime for p in sources) > min(p.stat().st_mtime for p in built)


@pytest.fixture(scope="session")
def dist() -> Path:
    """web/dist, rebuilt with `npm run build:web` when a source is newer than the bundle."""
    if _dist_is_stale():
        npm = shutil.which("npm")
        assert npm, "npm is needed to bundle the labelling page (web/): install Node.js, then `make setup`"
        subprocess.run([npm, "run", "--silent", "build:web"], cwd=REPO, check=True)
    return DIST


@pytest.fixture(scope="session")
def browser() -> Iterator[object]:
    """Debian's Chromium driven by Playwright (no browser download)."""
    if not CHROMIUM.exists():
        pytest.skip("the browser tests need Chromium: apt-get install -y chromium")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


@pytest.fixture(scope="session")
def scenes() -> list[tuple[bytes, list[dict]]]:
    """Two 800×600 corpus images with their objects."""
    return [corpus_scene(2), corpus_scene(3)]


@pytest.fixture
def open_page(browser, dist, scenes) -> Iterator[Callable[..., tuple[object, FakeLabellingApi]]]:
    """open_page(tasks, classes, …) → (page, api): a fresh browser context on a fresh fake API."""
    started: list[tuple[object, FakeLabellingApi]] = []

    def open_page(
        tasks: list[FakeTask],
        classes: list[dict],
        auth: dict | None = None,
        worker: str | None = "tester",
        fragment: str = "",
        before_load: Callable[[object, FakeLabellingApi], None] | None = None,
        wait_for_image: bool = True,
    ) -> tuple[object, FakeLabellingApi]:
        api = FakeLabellingApi(dist=dist, tasks=tasks, classes=classes, auth=auth or {"kind": "none"})
        url = api.start()
        context = browser.new_context(viewport=VIEWPORT)
        started.append((context, api))
        if worker is not None:
            context.add_init_script(f"localStorage.setItem('boxloop.worker', {worker!r})")
        page = context.new_page()
        page.set_default_timeout(10_000)
        if before_load is not None:
            before_load(page, api)
        page.goto(url + fragment)
        if wait_for_image:
            page.wait_for_function("() => window.boxloop && window.boxloop.taskId() !== null")
        return page, api

    yield open_page
    for context, api in started:
        context.close()
        api.stop()
