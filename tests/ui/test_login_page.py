"""The login page open to anyone names no server path, and a browser signed in with the
login's cookie can sign out (a CSRF-checked form), which ends its session."""

from __future__ import annotations

from pathlib import Path

from studiolib import add_job, client, csrf, studio_app

from tabpilot.store import Store

TOKEN = "login-page-token"


def test_the_open_login_page_names_no_path_and_offers_no_sign_out(tmp_path: Path) -> None:
    app = studio_app(tmp_path, host="0.0.0.0", token=TOKEN)
    page = client(app, base_url="http://studio.example:8080").get("/studio/login")
    assert page.status_code == 200 and "Server token" in page.text
    assert str(tmp_path) not in page.text and "Sign out" not in page.text


def test_a_signed_in_browser_signs_out(tmp_path: Path) -> None:
    add_job(Store.for_workspace(tmp_path), "a", n=1)
    app = studio_app(tmp_path, host="0.0.0.0", token=TOKEN)
    http = client(app, base_url="http://studio.example:8080")
    token = csrf(http)
    assert http.post("/studio/login", data={"token": TOKEN, "csrf_token": token}
                     ).status_code == 303
    home = http.get("/studio/")
    assert home.status_code == 200 and 'action="logout"' in home.text and "Sign out" in home.text
    assert str(tmp_path) in home.text  # signed in: the workspace is named again
    assert http.post("/studio/logout").status_code == 403  # no CSRF token: refused
    assert http.get("/studio/").status_code == 200
    out = http.post("/studio/logout", data={"csrf_token": token})
    assert out.status_code == 303 and out.headers["location"] == "login"
    assert "tabpilot_studio" not in http.cookies
    assert http.get("/studio/").status_code == 303  # back to the login
    # a script with the token in its headers has no cookie session: nothing to sign out of
    script = client(app, base_url="http://studio.example:8080",
                    headers={"Authorization": f"Bearer {TOKEN}"})
    assert "Sign out" not in script.get("/studio/").text
