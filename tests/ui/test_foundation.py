"""The Studio's foundation: who may call it (login, session cookie, CSRF, Host, Origin),
the headers on every response, relative URLs behind a proxy prefix, the vendored assets."""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path

import pytest
from studiolib import LOOPBACK, add_job, client, csrf, studio_app

from tabpilot import ui
from tabpilot.serving.guard import relative, studio_session
from tabpilot.store import Store

TOKEN = "s3cret-token-for-the-studio"


@pytest.fixture(scope="module")
def workspace(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("studio")
    add_job(Store.for_workspace(root), "running", n=3)
    return root


@pytest.fixture(scope="module")
def open_app(workspace: Path):
    return studio_app(workspace)


@pytest.fixture(scope="module")
def locked_app(workspace: Path):
    """Bound off loopback, as `tabpilot serve --host 0.0.0.0 --token T` is."""
    return studio_app(workspace, host="0.0.0.0", token=TOKEN)


PAGES = ["/studio/", "/studio/jobs/running", "/studio/jobs/running?page=2&sort=objective"]
APIS = ["/api/v1/jobs", "/api/v1/jobs/running", "/api/v1/openapi.json"]


def test_root_redirects_to_the_studio_and_post_root_stays_the_sagemaker_api(open_app) -> None:
    http = client(open_app)
    response = http.get("/")
    assert response.status_code == 303 and response.headers["location"] == "studio/"
    api = http.post("/", headers={"X-Amz-Target": "SageMaker.ListAutoMLJobs",
                                  "Content-Type": "application/x-amz-json-1.1"}, content="{}")
    assert api.status_code == 200 and "AutoMLJobSummaries" in api.json()


@pytest.mark.parametrize("path", [*PAGES, *APIS, "/studio/static/studio.css",
                                  "/studio/login", "/studio/jobs/missing", "/studio/nowhere"])
def test_every_studio_response_carries_the_security_headers(open_app, path: str) -> None:
    response = client(open_app).get(path)
    assert response.status_code in (200, 404)
    csp = response.headers["content-security-policy"]
    assert "default-src 'self'" in csp and "frame-ancestors 'none'" in csp
    assert response.headers["x-content-type-options"] == "nosniff"


def test_refusals_and_redirects_carry_the_headers_too(locked_app) -> None:
    http = client(locked_app, base_url="http://studio.example:8080")
    for response in (http.get("/studio/"), http.get("/api/v1/jobs")):
        assert response.status_code in (303, 401)
        assert "default-src 'self'" in response.headers["content-security-policy"]


@pytest.mark.parametrize("path", PAGES)
def test_pages_have_no_inline_script_or_style(open_app, path: str) -> None:
    html = client(open_app).get(path).text
    assert html.startswith("<!doctype html>")
    for tag in re.findall(r"<script\b[^>]*>", html):
        assert "src=" in tag or 'type="application/json"' in tag, tag
    assert not re.search(r"\sstyle=", html) and "<style" not in html
    assert "data:" not in html and "http://" not in html and "https://" not in html
    assert "<main" in html and html.count("<main") == 1


def test_a_foreign_host_is_refused_on_loopback(open_app) -> None:
    """DNS rebinding: a page on evil.example resolving to 127.0.0.1 gets nothing."""
    http = client(open_app, base_url="http://evil.example:8080")
    for path in [*PAGES, *APIS]:
        assert http.get(path).status_code == 403


def test_a_foreign_origin_or_cross_site_request_is_refused(open_app) -> None:
    http = client(open_app)
    token = csrf(http)
    headers = {"X-CSRF-Token": token, "Origin": "http://evil.example"}
    assert http.post("/api/v1/jobs/running/stop", headers=headers).status_code == 403
    headers = {"X-CSRF-Token": token, "Sec-Fetch-Site": "cross-site"}
    assert http.post("/api/v1/jobs/running/stop", headers=headers).status_code == 403
    assert Store.for_workspace(open_app.state.studio_ctx.workspace).get_job(
        "running").status == "InProgress"


def test_state_changes_need_the_csrf_token(open_app) -> None:
    http = client(open_app)
    token = csrf(http)
    stop = "/api/v1/jobs/running/stop"
    assert http.post(stop).status_code == 403
    assert http.post(stop, headers={"X-CSRF-Token": "0" * 64}).status_code == 403
    assert http.post("/studio/jobs/running/stop", data={"csrf_token": "x"}).status_code == 403
    other = client(open_app)  # another browser's token does not fit this one's cookie
    assert other.post(stop, headers={"X-CSRF-Token": csrf(other) + "0"}).status_code == 403
    no_cookie = client(open_app)
    assert no_cookie.post(stop, headers={"X-CSRF-Token": token}).status_code == 403
    store = open_app.state.studio_ctx.store
    assert store.get_job("running").status == "InProgress"


def test_the_stop_button_is_the_clis_stop(tmp_path: Path) -> None:
    store = Store.for_workspace(tmp_path)
    add_job(store, "busy", n=1)
    add_job(store, "other", n=1)
    http = client(studio_app(tmp_path))
    token = csrf(http, "/studio/jobs/busy")
    response = http.post("/studio/jobs/busy/stop", data={"csrf_token": token})
    assert response.status_code == 303 and response.headers["location"] == "../busy?stopping=1"
    assert store.get_job("busy").status == "Stopping"
    answer = http.post("/api/v1/jobs/other/stop", headers={"X-CSRF-Token": token})
    assert answer.json() == {"AutoMLJobName": "other", "AutoMLJobStatus": "Stopping"}
    missing = http.post("/api/v1/jobs/nope/stop", headers={"X-CSRF-Token": token})
    assert missing.status_code == 404 and "nope" in missing.json()["message"]


def test_off_loopback_every_page_redirects_to_the_login(locked_app) -> None:
    http = client(locked_app, base_url="http://studio.example:8080")
    response = http.get("/studio/jobs/running?page=2")
    assert response.status_code == 303
    assert response.headers["location"] == \
        "../login?next=%2Fstudio%2Fjobs%2Frunning%3Fpage%3D2"
    for path in PAGES:
        assert http.get(path).headers["location"].split("?")[0].endswith("login")
    for path in APIS:
        answer = http.get(path)
        assert answer.status_code == 401 and "token" in answer.json()["message"]
    assert http.get("/studio/static/studio.css").status_code == 200
    assert http.get("/studio/login").status_code == 200
    assert http.get("/").status_code == 303


def test_the_login_takes_the_token_once_and_keeps_a_strict_httponly_cookie(locked_app) -> None:
    http = client(locked_app, base_url="http://studio.example:8080")
    form = csrf(http)
    wrong = http.post("/studio/login", data={"token": "guess", "csrf_token": form,
                                             "next": "/studio/jobs/running"})
    assert wrong.status_code == 401 and "not this server" in wrong.text
    assert "tabpilot_studio" not in http.cookies
    stale = http.post("/studio/login", data={"token": TOKEN, "csrf_token": "x"})
    assert stale.status_code == 403 and "tabpilot_studio" not in http.cookies
    ok = http.post("/studio/login", data={"token": TOKEN, "csrf_token": form,
                                          "next": "/studio/jobs/running"})
    assert ok.status_code == 303 and ok.headers["location"] == "jobs/running"
    cookie = ok.headers["set-cookie"]
    assert "HttpOnly" in cookie and "samesite=strict" in cookie.lower()
    assert TOKEN not in cookie and TOKEN not in ok.headers["location"]
    assert http.get("/studio/jobs/running").status_code == 200
    assert http.get("/api/v1/jobs").json()["Jobs"][0]["name"] == "running"


def test_the_session_cookie_must_be_the_servers(locked_app) -> None:
    http = client(locked_app, base_url="http://studio.example:8080")
    http.cookies.set("tabpilot_studio", studio_session("another token"))
    assert http.get("/studio/").status_code == 303
    assert http.get("/api/v1/jobs").status_code == 401
    http.cookies.set("tabpilot_studio", TOKEN)  # the token itself is not a session either
    assert http.get("/studio/").status_code == 303


def test_a_signed_in_browser_still_needs_csrf_but_a_script_with_the_token_does_not(
        tmp_path: Path) -> None:
    store = Store.for_workspace(tmp_path)
    add_job(store, "a", n=1)
    app = studio_app(tmp_path, host="0.0.0.0", token=TOKEN)
    browser = client(app, base_url="http://studio.example:8080")
    browser.cookies.set("tabpilot_studio", studio_session(TOKEN))
    assert browser.post("/api/v1/jobs/a/stop").status_code == 403
    script = client(app, base_url="http://studio.example:8080",
                    headers={"Authorization": f"Bearer {TOKEN}"})
    assert script.post("/api/v1/jobs/a/stop").json()["AutoMLJobStatus"] == "Stopping"


@pytest.mark.parametrize("given", ["//evil.example/x", "https://evil.example/", "/metrics",
                                   "/studio/login", "/studio/\\evil"])
def test_the_login_never_sends_people_elsewhere(locked_app, given: str) -> None:
    http = client(locked_app, base_url="http://studio.example:8080")
    form = csrf(http)
    ok = http.post("/studio/login", data={"token": TOKEN, "csrf_token": form, "next": given})
    assert ok.status_code == 303 and ok.headers["location"] == "./"


def test_on_loopback_without_a_token_there_is_nothing_to_log_in_to(open_app) -> None:
    page = client(open_app).get("/studio/login")
    assert page.status_code == 200 and "nothing to sign in to" in page.text


def test_links_are_relative_and_work_behind_a_proxy_prefix(workspace: Path) -> None:
    app = studio_app(workspace, root_path="/tabpilot")
    http = client(app, base_url=LOOPBACK, root_path="/tabpilot")
    html = http.get("/tabpilot/studio/jobs/running").text
    hrefs = re.findall(r'(?:href|src|action|data-live|data-events)="([^"]+)"', html)
    assert hrefs and not [h for h in hrefs if h.startswith("/") or "://" in h]
    assert 'href="../static/studio.css"' in html
    assert 'data-events="../../api/v1/jobs/running/events"' in html
    fresh = client(app, base_url=LOOPBACK, root_path="/tabpilot")
    cookie = fresh.get("/tabpilot/studio/").headers["set-cookie"]
    assert "Path=/tabpilot/" in cookie
    schema = http.get("/tabpilot/api/v1/openapi.json").json()
    assert schema["servers"] == [{"url": "/tabpilot"}]


@pytest.mark.parametrize(("current", "target", "expected"), [
    ("/studio/", "/studio/jobs/a", "jobs/a"),
    ("/studio/jobs/a", "/studio/", "../"),
    ("/studio/jobs/a", "/studio/jobs/a/candidates/b", "a/candidates/b"),
    ("/studio/jobs/a", "/api/v1/jobs/a/events", "../../api/v1/jobs/a/events"),
    ("/studio/", "/studio/", "./"),
    ("/studio/jobs/a", "/studio/jobs/b?page=2", "b?page=2"),
    ("/studio/x", "/studio/a:b", "./a:b"),
])
def test_relative_urls(current: str, target: str, expected: str) -> None:
    assert relative(current, target) == expected


def test_openapi_lists_the_rest_api_and_no_page(open_app) -> None:
    paths = client(open_app).get("/api/v1/openapi.json").json()["paths"]
    assert {"/api/v1/jobs", "/api/v1/jobs/{job}", "/api/v1/jobs/{job}/leaderboard",
            "/api/v1/jobs/{job}/stop"} <= set(paths)
    assert all(p.startswith("/api/v1/") for p in paths)


def test_vendored_assets_match_their_manifest_and_carry_licences() -> None:
    vendor = Path(ui.__file__).parent / "static" / "vendor"
    manifest = json.loads((vendor / "MANIFEST.json").read_text())
    names = {p["name"] for p in manifest["packages"]}
    assert {"htmx.org", "htmx-ext-sse", "uplot"} <= names
    for package in manifest["packages"]:
        assert package["version"] and package["license"]
        assert any(f.endswith("LICENSE") for f in package["files"])
        for path, digest in package["files"].items():
            assert hashlib.sha256((vendor / path).read_bytes()).hexdigest() == digest, path
    listed = {p for package in manifest["packages"] for p in package["files"]}
    present = {str(p.relative_to(vendor)) for p in vendor.rglob("*")
               if p.is_file() and p.name != "MANIFEST.json"}
    assert present == listed
