"""The Notebooks page: the starter notebook a job gets, the page without JupyterLab, and
(slow) the real launcher — JupyterLab started on loopback with the server's token, its
/api/status asked with and without it, its kernel the server's interpreter, stopped with
the server — and the starter executed against a real `tabpilot serve`."""

from __future__ import annotations

import json
import sys
import urllib.error
import urllib.request
from pathlib import Path

import nbformat
import pytest
from studiolib import add_job, client, csrf, studio_app

from tabpilot.store import Store
from tabpilot.ui import jupyter, starter

sys.path.insert(0, str(Path(__file__).parent.parent / "serving"))
from servinglib import ThreadServer, churn_table  # noqa: E402

TOKEN = "notebook-test-token"


def test_starter_is_a_valid_notebook_and_never_overwrites(tmp_path: Path) -> None:
    store = Store.for_workspace(tmp_path)
    add_job(store, "nb-job", status="Completed", secondary="Completed", n=1)
    job = store.get_job("nb-job")
    first = starter.write(job, "http://127.0.0.1:9999", tmp_path)
    first.write_text(first.read_text().replace("Leaderboard", "My edits"))
    second = starter.write(job, "http://127.0.0.1:9999", tmp_path)
    assert (first.name, second.name) == ("nb-job-starter.ipynb", "nb-job-starter-2.ipynb")
    assert "My edits" in first.read_text()  # a person's edits stay
    nb = nbformat.read(second, as_version=4)
    nbformat.validate(nb)
    source = "\n".join(c.source for c in nb.cells)
    for expected in ("AutoML.attach(JOB", "job.leaderboard()", "model.predict(rows)",
                     "describe_auto_ml_job_v2", "create_endpoint(", "invoke_endpoint(",
                     "delete_endpoint(", "'http://127.0.0.1:9999'", "JOB = 'nb-job'"):
        assert expected in source, expected
    for cell in nb.cells:
        if cell.cell_type == "code":
            compile(cell.source, str(second), "exec")  # every cell is Python


def test_page_without_jupyterlab_says_how_to_install(tmp_path: Path, monkeypatch) -> None:
    add_job(Store.for_workspace(tmp_path), "nb-job", status="Completed",
            secondary="Completed", n=1)
    monkeypatch.setattr(jupyter, "available", lambda: False)
    http = client(studio_app(tmp_path))
    page = http.get("/studio/notebooks/?job=nb-job")
    assert page.status_code == 200 and "pip install &#39;tabpilot[notebook]&#39;" in page.text
    assert "disabled" in page.text and "nb-job" in page.text
    token = csrf(http, "/studio/notebooks/")
    answer = http.post("/studio/notebooks/new", data={"csrf_token": token, "job": "nb-job"})
    assert answer.status_code == 400 and "JupyterLab is not installed" in answer.text
    assert not list((tmp_path / "jobs" / "nb-job").glob("*.ipynb"))  # nothing written
    assert http.post("/studio/notebooks/open", data={"job": "nb-job"}).status_code == 403
    missing = http.post("/studio/notebooks/open", data={"csrf_token": token, "job": "nope"})
    assert missing.status_code == 400 and "no job named" in missing.text
    assert http.get("/api/v1/notebooks").json()["installed"] is False


@pytest.mark.slow
def test_launcher_starts_jupyterlab_with_the_token_and_stops_with_the_server(
        tmp_path: Path) -> None:
    add_job(Store.for_workspace(tmp_path), "nb-job", status="Completed",
            secondary="Completed", n=1)
    (tmp_path / "jobs" / "nb-job").mkdir(parents=True)
    app = studio_app(tmp_path, token=TOKEN)
    auth = {"Authorization": f"Bearer {TOKEN}"}
    with client(app) as http:  # the lifespan runs: leaving it stops the server
        opened = http.post("/api/v1/notebooks/open", json={"job": "nb-job"}, headers=auth)
        assert opened.status_code == 200, opened.text
        url = opened.json()["url"]
        lab = app.state.studio_jupyter
        assert url == f"http://127.0.0.1:{lab.port}/lab/tree/jobs/nb-job"  # no token in it
        assert lab.status()["started"]  # /api/status with the server's token
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(f"{lab.base}/api/status", timeout=10)
        assert refused.value.code == 403
        specs = _get(f"{lab.base}/api/kernelspecs", TOKEN)
        assert specs["default"] == "python3"
        assert specs["kernelspecs"]["python3"]["spec"]["argv"][0] == sys.executable
        again = http.post("/api/v1/notebooks/new", json={"job": "nb-job"}, headers=auth)
        assert again.status_code == 201 and app.state.studio_jupyter.port == lab.port  # reused
        assert again.json()["path"] == "jobs/nb-job/nb-job-starter.ipynb"
        contents = _get(f"{lab.base}/api/contents/jobs/nb-job/nb-job-starter.ipynb", TOKEN)
        assert contents["type"] == "notebook"
        assert TOKEN not in json.dumps(contents["content"])  # the secret is not in the file
        process = lab.process
    assert process.poll() is not None and not lab.running


def _get(url: str, token: str) -> dict:
    request = urllib.request.Request(url, headers={"Authorization": f"token {token}"})
    with urllib.request.urlopen(request, timeout=10) as answer:
        return json.loads(answer.read())


@pytest.mark.slow
def test_starter_runs_against_a_real_server(tmp_path: Path) -> None:
    import nbclient

    from tabpilot.automl import AutoML

    AutoML("label", time_limit=20, algorithms=["lightgbm"], mode="hpo", max_candidates=1,
           name="nb-run", workspace=tmp_path, verbosity=0).fit(churn_table(200))
    app = studio_app(tmp_path, poll_seconds=0.2)
    with ThreadServer(app) as server:
        path = starter.write(Store.for_workspace(tmp_path).get_job("nb-run"), server.url,
                             tmp_path)
        nb = nbformat.read(path, as_version=4)
        nbclient.NotebookClient(nb, timeout=300, kernel_name="python3",
                                resources={"metadata": {"path": str(path.parent)}}).execute()
    outputs = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs]
    assert not [o for o in outputs if o.output_type == "error"]
    results = [o["data"]["text/plain"] for o in outputs if o.output_type == "execute_result"]
    assert any("InService" in r for r in results)
    assert "deleted nb-run-nb" in "".join(o.get("text", "") for o in outputs)
    assert Store.for_workspace(tmp_path).list_endpoints() == []
