"""The review page's own defences, over real HTTP on the server `tabpilot serve` builds:
values are escaped, the sign-in form needs its CSRF token, a removed reviewer's session
ends at once, signing out ends it, and the guard's exception for /review/ is exactly that
path (foreign origins and dot segments still meet the guard)."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator

import httpx
import pytest
from reviewlib import Reviewer, ThreadedServer, field, make_flow

from tabpilot.review.reviewers import add_reviewer, remove_reviewer
from tabpilot.store import Store


@pytest.fixture(scope="module")
def page(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict]:
    tmp = tmp_path_factory.mktemp("page")
    store = Store.for_workspace(tmp / "ws")
    make_flow(store, "churn", tmp / "out", task_count=1)
    tokens = {n: add_reviewer(store, n) for n in ("dana", "erin")}
    server = ThreadedServer(tmp / "ws", None)
    try:
        yield {"server": server, "store": store, "tokens": tokens}
    finally:
        server.stop()


def test_values_are_escaped_and_the_page_is_locked_down(page: dict) -> None:
    content = {"row": {"plan": "<script>alert(1)</script>", "tenure": None},
               "prediction": "<b>yes</b>", "probabilities": {"no": 0.4, "<b>yes</b>": 0.6},
               "labels": ["no", "<b>yes</b>"]}
    page["server"].app.state.review.start("xss-1", "churn", json.dumps(content))
    reviewer = Reviewer(page["server"].url, "dana", page["tokens"]["dana"])
    assert reviewer.sign_in().status_code == 303
    html = reviewer.task()
    assert "<script>" not in html and "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "<b>yes</b>" not in html and "(missing)" in html
    headers = reviewer.last.headers
    assert "default-src 'none'" in headers["content-security-policy"]
    assert headers["cache-control"] == "no-store"
    assert reviewer.answer("<b>yes</b>").headers["location"] == "/review/?answered=xss-1"
    assert "100% agreement" in reviewer.http.get("/review/?answered=xss-1").text


def test_sign_in_needs_the_forms_csrf_token(page: dict) -> None:
    http = httpx.Client(base_url=page["server"].url)
    refused = http.post("/review/login", data={"reviewer": "erin",
                                               "token": page["tokens"]["erin"]})
    assert refused.status_code == 403 and "tabpilot_review" not in http.cookies
    form = http.get("/review/login")
    wrong = http.post("/review/login", data={"csrf": field(form.text, "csrf") + "0",
                                             "reviewer": "erin", "token": page["tokens"]["erin"]})
    assert wrong.status_code == 403 and "tabpilot_review" not in http.cookies


def test_removing_a_reviewer_or_signing_out_ends_the_session(page: dict) -> None:
    store, url = page["store"], page["server"].url
    token = add_reviewer(store, "fred")
    fred = Reviewer(url, "fred", token)
    fred.sign_in()
    assert fred.http.get("/review/").status_code == 200
    remove_reviewer(store, "fred")
    assert fred.http.get("/review/").headers["location"] == "/review/login"
    erin = Reviewer(url, "erin", page["tokens"]["erin"])
    erin.sign_in()
    html = erin.task()
    out = erin.http.post("/review/logout", data={"csrf": field(html, "csrf")})
    assert out.headers["location"] == "/review/login"
    assert erin.http.get("/review/").headers["location"] == "/review/login"


def test_the_guard_opens_exactly_the_review_path(page: dict) -> None:
    url = page["server"].url
    foreign = httpx.post(f"{url}/review/login", headers={"Origin": "http://evil.example"},
                         data={"reviewer": "dana", "token": page["tokens"]["dana"]})
    assert foreign.status_code == 403
    dotted = httpx.get(f"{url}/review/%2e%2e/endpoints")  # decodes to /review/../endpoints
    assert dotted.status_code == 401
    assert httpx.get(f"{url}/reviewer").status_code == 401  # a prefix is not the page
    assert httpx.get(f"{url}/review").status_code == 303


def test_an_expired_lease_returns_the_task_over_http(page: dict) -> None:
    desk, url = page["server"].app.state.review, page["server"].url
    real, now = desk.clock, [time.time()]
    desk.clock = lambda: now[0]
    try:
        desk.start("lease-1", "churn", json.dumps({"row": {"tenure": 5}, "labels": ["no", "yes"]}))
        dana = Reviewer(url, "dana", page["tokens"]["dana"])
        erin = Reviewer(url, "erin", page["tokens"]["erin"])
        dana.sign_in()
        erin.sign_in()
        assert field(dana.task(), "loop") == "lease-1"
        assert 'name="loop"' not in erin.task()  # one reviewer per item, and dana has it
        now[0] += 61  # past the flow's TaskTimeLimitInSeconds
        assert field(erin.task(), "loop") == "lease-1"
        late = dana.answer("yes", "lease-1")
        assert late.headers["location"] == "/review/?error=lease"
        assert "went back to the queue" in dana.http.get(late.headers["location"]).text
        erin.answer("no")
        row = desk.get("lease-1")
        assert row.status == "Completed" and [a["workerId"] for a in row.spec["answers"]] == \
            ["erin"]
    finally:
        desk.clock = real
