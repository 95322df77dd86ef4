"""The Studio's login in Chromium, reached the off-loopback way.

The guard treats a server as off loopback when it is bound to an address other than
127.0.0.1, localhost or ::1 (serving/app.py `ServerSettings.policy`); such a server must
have a token. Here `tabpilot serve --host 127.0.0.2 --token T` is that server: 127.0.0.2
is still this machine (all of 127/8 is the loopback interface, so the test stays offline)
but not a name the guard trusts, so every page redirects to the login exactly as it does
for a server bound to the machine's own address. The browser may reach 127.0.0.2 only;
`http://evil.example/` is a page the test itself serves (Playwright fulfils it, nothing
leaves the machine) to play the foreign site.

What is checked: every page redirects to the login and the API answers 401; a wrong token
says so and sets nothing; the right token is asked once and kept in an HttpOnly,
SameSite=Strict cookie that is not the token; then pages work in every tab of that
browser but not in another browser; a state-changing request without the CSRF token, with
a wrong one, or from a foreign Origin (even carrying a valid CSRF token) is refused and
changes nothing; the page's own Stop button works. axe and light/dark screenshots of the
login page.
"""

from __future__ import annotations

import re
import socket
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest

from conftest import STARTUP_SECONDS, Watch, tabpilot_cli, watched_page
from tabpilot.store import Store

sys.path.insert(0, str(Path(__file__).parents[1] / "ui"))
from studiolib import add_job  # noqa: E402  (the store-built jobs of tests/ui)

HOST = "127.0.0.2"  # loopback to the kernel, "off loopback" to the guard
TOKEN = "browser-login-token-7f3a"
FOREIGN = "http://evil.example/"
PAGES = ["/studio/", "/studio/jobs/done", "/studio/new", "/studio/compare",
         "/studio/endpoints", "/studio/transforms", "/studio/notebooks/"]


@dataclass
class Remote:
    root: str
    store: Store
    workspace: Path


def _port() -> int:
    with socket.socket() as s:
        try:
            s.bind((HOST, 0))
        except OSError as exc:
            pytest.fail(f"cannot bind {HOST} ({exc}): the login test needs the whole "
                        "127.0.0.0/8 range on the loopback interface, as Linux has it")
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def remote(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Remote]:
    workspace = tmp_path_factory.mktemp("login") / "workspace"
    workspace.mkdir()
    store = Store.for_workspace(workspace)
    add_job(store, "done", "Completed", "Completed", n=3)
    add_job(store, "running", n=2, best=False)
    stop = threading.Event()

    def beat() -> None:  # as the job's own process would, else readers mark it Failed
        while not stop.is_set():
            store.beat("running")
            stop.wait(0.5)

    threading.Thread(target=beat, daemon=True).start()
    port = _port()
    log = workspace.parent / "serve.log"
    process = tabpilot_cli("serve", "--host", HOST, "--port", str(port), "--token", TOKEN,
                           "--workspace", str(workspace), log=log)
    root = f"http://{HOST}:{port}"
    try:
        deadline = time.monotonic() + STARTUP_SECONDS
        while True:
            if process.poll() is not None:
                pytest.fail(f"tabpilot serve exited: {log.read_text()[-2000:]}")
            try:
                if httpx.get(root + "/ping", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"tabpilot serve did not answer: {log.read_text()[-2000:]}")
            time.sleep(0.2)
        yield Remote(root, store, workspace)
    finally:
        stop.set()
        process.terminate()
        try:
            process.wait(timeout=20)
        except Exception:
            process.kill()
            process.wait()


def _page(browser, watch: Watch):
    """A watched page that may reach the server on 127.0.0.2 and the test's own foreign
    page, and nothing else (anything else is recorded and fails the test)."""
    context, page = watched_page(browser, watch)
    context.unroute("**/*")

    def handle(route) -> None:
        url = route.request.url
        if urlsplit(url).hostname == HOST:
            route.continue_()
        elif url == FOREIGN:
            route.fulfill(status=200, content_type="text/html",
                          body=getattr(page, "foreign_html", "<p>nothing</p>"))
        else:
            watch.offsite.append(url)
            route.abort()

    context.route("**/*", handle)
    return context, page


REFUSED = re.compile(r"console: Failed to load resource: the server responded with a "
                     r"status of 40[13] ")


def _check(watch: Watch) -> None:
    """The watcher's check, less the console lines of the refusals this test provokes."""
    watch.errors = [e for e in watch.errors if not REFUSED.match(e)]
    watch.check()


@pytest.fixture
def tab(browser) -> Iterator:
    watch = Watch()
    context, page = _page(browser, watch)
    yield page
    context.close()
    _check(watch)


def sign_in(page, root: str, token: str, then: str = "/studio/jobs/done") -> None:
    page.goto(root + then)
    page.wait_for_url(re.compile(r"/studio/login\?next="))
    page.get_by_label("Server token").fill(token)
    page.get_by_role("button", name="Sign in").click()


def _fetch_status(page, path: str, headers: dict | None = None) -> dict:
    return page.evaluate("""async ([path, headers]) => {
        const r = await fetch(path, {method: 'POST', headers: headers || {},
                                     credentials: 'same-origin'});
        return {status: r.status, text: await r.text()};
    }""", [path, headers])


def test_off_loopback_every_page_asks_for_the_token_once(remote, tab, browser, axe,
                                                          shot) -> None:
    for path in PAGES:
        tab.goto(remote.root + path)
        assert urlsplit(tab.url).path == "/studio/login", f"{path} did not ask to sign in"
    api = tab.evaluate("fetch('/api/v1/jobs').then(r => r.status)")
    assert api == 401
    tab.goto(remote.root + "/studio/jobs/done?page=1")
    assert tab.get_by_role("heading", name="Sign in to tabpilot Studio").is_visible()
    assert str(remote.workspace) not in tab.content()  # the open page names no path
    assert tab.get_by_role("button", name="Sign out").count() == 0
    axe(tab)
    shot(tab, "login")

    tab.get_by_label("Server token").fill("a guess")
    tab.get_by_role("button", name="Sign in").click()
    assert tab.get_by_role("alert").filter(
        has_text="That is not this server's token.").is_visible()
    assert not [c for c in tab.context.cookies() if c["name"] == "tabpilot_studio"]

    tab.get_by_label("Server token").fill(TOKEN)
    tab.get_by_role("button", name="Sign in").click()
    tab.wait_for_url(re.compile(r"/studio/jobs/done\?page=1$"))  # back where it was asked
    assert tab.get_by_role("heading", name=re.compile("Job done")).is_visible()
    session = [c for c in tab.context.cookies() if c["name"] == "tabpilot_studio"]
    assert len(session) == 1
    assert session[0]["httpOnly"] and session[0]["sameSite"] == "Strict"
    assert TOKEN not in session[0]["value"]
    assert "tabpilot_studio" not in tab.evaluate("document.cookie")  # scripts cannot read it

    for path in PAGES:  # asked once: every page now opens, in this tab and a new one
        tab.goto(remote.root + path)
        assert urlsplit(tab.url).path == path, f"{path} asked again"
    second = tab.context.new_page()
    second.goto(remote.root + "/studio/jobs/running")
    assert second.get_by_role("button", name="Stop job").is_visible()
    assert tab.evaluate("fetch('/api/v1/jobs').then(r => r.status)") == 200

    watch = Watch()
    other_context, other = _page(browser, watch)  # another browser: no session
    try:
        other.goto(remote.root + "/studio/")
        assert urlsplit(other.url).path == "/studio/login"
    finally:
        other_context.close()
    _check(watch)

    tab.goto(remote.root + "/studio/")  # signing out ends the session in every tab
    tab.get_by_role("button", name="Sign out").click()
    tab.wait_for_url(re.compile(r"/studio/login$"))
    assert not [c for c in tab.context.cookies() if c["name"] == "tabpilot_studio"]
    second.goto(remote.root + "/studio/jobs/running")
    assert urlsplit(second.url).path == "/studio/login"


def test_state_changes_need_the_csrf_token_and_our_origin(remote, tab) -> None:
    sign_in(tab, remote.root, TOKEN, "/studio/jobs/running")
    tab.wait_for_url(re.compile(r"/studio/jobs/running$"))
    token = tab.locator('meta[name="csrf-token"]').get_attribute("content")
    for path in ("/studio/jobs/running/stop", "/api/v1/jobs/running/stop"):
        missing = _fetch_status(tab, path)
        assert missing["status"] == 403 and "CSRF" in missing["text"], missing
        wrong = _fetch_status(tab, path, {"X-CSRF-Token": "0" * 64})
        assert wrong["status"] == 403, wrong
    assert remote.store.get_job("running").status == "InProgress"

    # a foreign site's form, carrying even a valid CSRF token, is refused by its Origin
    tab.foreign_html = (
        f'<form method="post" action="{remote.root}/studio/jobs/running/stop">'
        f'<input type="hidden" name="csrf_token" value="{token}">'
        '<button type="submit">Win a prize</button></form>')
    tab.goto(FOREIGN)
    with tab.expect_response(lambda r: r.url.endswith("/studio/jobs/running/stop")) as sent:
        tab.get_by_role("button", name="Win a prize").click()
    refused = sent.value
    assert refused.status == 403
    assert refused.request.headers.get("origin") == FOREIGN.rstrip("/")
    assert "refused" in refused.text()
    assert remote.store.get_job("running").status == "InProgress"

    tab.goto(remote.root + "/studio/jobs/running")  # the page's own button: allowed
    tab.get_by_role("button", name="Stop job").click()
    tab.wait_for_url(re.compile(r"stopping=1"))
    assert tab.get_by_text("Stop requested").is_visible()
    assert remote.store.get_job("running").status in ("Stopping", "Stopped")
