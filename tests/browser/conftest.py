"""The Studio in a real headless Chromium (make test-browser; marker `browser`).

Fixtures for every browser test (UA's, UB's, UC's):

    studio      a real `tabpilot serve` subprocess on a free loopback port, its workspace
                holding one small finished job (scikit-learn's breast cancer table, two
                fast algorithms); `studio.url`, `studio.workspace`, `studio.job`
    page        a fresh browser context and page: every request not to 127.0.0.1 is
                aborted and recorded, and the test fails if one was attempted, or if a
                console error, a page error or a CSP violation happened
    axe(page)   runs the vendored axe-core (tests/browser/vendor/axe.min.js) in the page
                through page.evaluate (a <script> tag would be refused by the CSP) and
                fails on serious or critical violations, in light and in dark
    shot(page, name)   writes docs/screenshots/<name>-light.png and <name>-dark.png

Chromium is Debian's (/usr/bin/chromium; $TABPILOT_CHROMIUM overrides), launched through
Playwright's `executable_path`, never a downloaded build. A missing Playwright or
Chromium fails these tests with the command that installs it: CI installs both.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest

from tabpilot.serving.ports import free_port

CHROMIUM = os.environ.get("TABPILOT_CHROMIUM", "/usr/bin/chromium")
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync"]
HERE = Path(__file__).parent
AXE = HERE / "vendor" / "axe.min.js"
SCREENSHOTS = HERE.parent.parent / "docs" / "screenshots"
JOB = "bc"
STARTUP_SECONDS = 180  # a loaded 2-core CI machine imports the server slowly


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Every test here is a browser test, whatever its file says."""
    for item in items:
        if HERE in Path(str(item.fspath)).parents:
            item.add_marker(pytest.mark.browser)


@dataclass
class Studio:
    url: str  # http://127.0.0.1:PORT/studio/
    root: str  # http://127.0.0.1:PORT
    workspace: Path
    job: str
    process: subprocess.Popen
    log: Path

    def get(self, path: str, **kwargs) -> httpx.Response:
        return httpx.get(self.root + path, timeout=30, **kwargs)


def tabpilot_cli(*args: str, log: Path, **kwargs) -> subprocess.Popen:
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    with open(log, "ab") as sink:
        return subprocess.Popen([sys.executable, "-m", "tabpilot", *args], stdout=sink,
                                stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env,
                                **kwargs)


def finished_job(workspace: Path, name: str = JOB, time_limit: int = 40) -> None:
    """A small real job, run by the CLI as a person would."""
    from sklearn.datasets import load_breast_cancer

    frame = load_breast_cancer(as_frame=True).frame
    frame["target"] = frame["target"].map({0: "malignant", 1: "benign"})
    table = workspace.parent / f"{name}.csv"
    frame.to_csv(table, index=False)
    log = workspace.parent / f"{name}.log"
    code = tabpilot_cli("run", str(table), "--target", "target", "--name", name,
                     "--time-limit", str(time_limit), "--algorithms", "lightgbm,linear",
                     "--per-trial-time-limit", "15", "--max-candidates", "6", "--workers", "1",
                     "--workspace", str(workspace), "--quiet", log=log).wait(timeout=300)
    assert code == 0, f"the job failed: {log.read_text()[-2000:]}"


def start_server(workspace: Path, *extra: str) -> Studio:
    port = free_port()
    log = workspace.parent / f"serve-{port}.log"
    process = tabpilot_cli("serve", "--port", str(port), "--workspace", str(workspace), *extra,
                        log=log)
    root = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + STARTUP_SECONDS
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"tabpilot serve exited: {log.read_text()[-2000:]}")
        try:
            if httpx.get(root + "/ping", timeout=2).status_code == 200:
                return Studio(root + "/studio/", root, workspace, JOB, process, log)
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    process.kill()
    pytest.fail(f"tabpilot serve did not answer within {STARTUP_SECONDS} s: "
                f"{log.read_text()[-2000:]}")


def stop_server(studio: Studio) -> None:
    studio.process.terminate()
    try:
        studio.process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        studio.process.kill()
        studio.process.wait()


@pytest.fixture(scope="session")
def studio_workspace(tmp_path_factory: pytest.TempPathFactory) -> Path:
    workspace = tmp_path_factory.mktemp("studio") / "workspace"
    workspace.mkdir()
    finished_job(workspace)
    return workspace


@pytest.fixture(scope="session")
def studio(studio_workspace: Path) -> Iterator[Studio]:
    server = start_server(studio_workspace)
    yield server
    stop_server(server)


@pytest.fixture(scope="session")
def browser() -> Iterator:
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.fail("Playwright is missing: pip install -e '.[browser]' (make test-browser "
                    "does it)")
    if not Path(CHROMIUM).exists():
        pytest.fail(f"no Chromium at {CHROMIUM}: apt-get install chromium (.ci/run does it), "
                    "or point $TABPILOT_CHROMIUM at one")
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=CHROMIUM, args=ARGS,
                                              headless=True)
        yield launched
        launched.close()


@dataclass
class Watch:
    """What a page tried that it must not: requests off loopback, errors, CSP violations."""
    offsite: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    def check(self) -> None:
        assert not self.offsite, f"requests off 127.0.0.1 were attempted: {self.offsite}"
        assert not self.errors, f"console errors or CSP violations: {self.errors}"


def _route(watch: Watch) -> Callable:
    def handle(route) -> None:
        url = route.request.url
        if urlsplit(url).hostname == "127.0.0.1":
            route.continue_()
        else:
            watch.offsite.append(url)
            route.abort()
    return handle


def watched_page(browser, watch: Watch, **context_options):
    context = browser.new_context(**{"viewport": {"width": 1280, "height": 900},
                                     **context_options})
    context.route("**/*", _route(watch))
    page = context.new_page()
    page.on("console", lambda m: watch.errors.append(f"console: {m.text}")
            if m.type == "error" else None)
    page.on("pageerror", lambda e: watch.errors.append(f"page error: {e}"))
    # a CSP refusal is reported to the page as an event, whatever the console shows
    page.add_init_script(path=str(HERE / "csp_watch.js"))
    page.on("console", lambda m: watch.errors.append(m.text)
            if m.text.startswith("CSP violation") else None)
    return context, page


@pytest.fixture
def page(browser) -> Iterator:
    watch = Watch()
    context, tab = watched_page(browser, watch)
    tab.watch = watch
    yield tab
    context.close()
    watch.check()


@pytest.fixture(scope="session")
def axe_source() -> str:
    return AXE.read_text(encoding="utf-8")


@pytest.fixture
def axe(axe_source: str) -> Callable:
    """axe(page): no serious or critical violation, light and dark (the scheme left as
    it was found)."""
    def run(page, schemes: tuple[str, ...] = ("light", "dark")) -> list[dict]:
        found = []
        for scheme in schemes:
            page.emulate_media(color_scheme=scheme)
            if not page.evaluate("() => typeof window.axe !== 'undefined'"):
                page.evaluate(axe_source + "\n;undefined")
            result = page.evaluate("""async () => {
                const r = await window.axe.run(document, {resultTypes: ['violations']});
                return r.violations.map(v => ({id: v.id, impact: v.impact, help: v.help,
                    nodes: v.nodes.slice(0, 5).map(n => n.target.join(' '))}));
            }""")
            found += [{**v, "scheme": scheme} for v in result]
        page.emulate_media(color_scheme="light")
        bad = [v for v in found if v["impact"] in ("serious", "critical")]
        assert not bad, f"axe found serious/critical violations on {page.url}: {bad}"
        return found
    return run


@pytest.fixture
def shot() -> Callable:
    """shot(page, name): docs/screenshots/<name>-light.png and <name>-dark.png, full page."""
    def take(page, name: str) -> list[Path]:
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        paths = []
        for scheme in ("light", "dark"):
            page.emulate_media(color_scheme=scheme)
            page.wait_for_timeout(150)  # charts redraw with the scheme's colours
            path = SCREENSHOTS / f"{name}-{scheme}.png"
            page.screenshot(path=str(path), full_page=True)
            paths.append(path)
        page.emulate_media(color_scheme="light")
        return paths
    return take
