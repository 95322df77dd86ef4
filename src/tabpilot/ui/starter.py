"""The "New notebook" starter for a job: load it, read the leaderboard, predict on new
rows, deploy the best candidate and call the endpoint with boto3, then clean up.

Written into the job's folder as `<job>-starter.ipynb` (`-2`, `-3`, ... beside an existing
one: a person's edits are never overwritten) and opened in JupyterLab. Its code is what a
user of SageMaker Studio would write against AWS, pointed at this server: `AutoML.attach`
for the job, boto3's `sagemaker` and `sagemaker-runtime` clients with `endpoint_url`. A
server with a token is reached with the `X-Tabpilot-Token` header (serving/guard.py),
added to boto3's requests by an event hook, read from `TABPILOT_TOKEN` (JupyterLab's
kernels started by the Studio have it; nothing secret is written into the file).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

from tabpilot import names

if TYPE_CHECKING:
    from tabpilot.store.metadata import JobRow

SUFFIX = "-starter"


def notebook(job: JobRow, server_url: str, workspace: Path) -> nbformat.NotebookNode:
    endpoint = f"{job.name[:50].rstrip('-')}-nb"
    cells = [
        new_markdown_cell(
            f"# Job `{job.name}`: starter notebook\n\n"
            f"Target **{job.target}** ({job.problem_type or 'problem type inferred'}), "
            f"objective **{job.metric}**. This notebook loads the job, shows its "
            "leaderboard, predicts on new rows, deploys the best candidate to the server "
            f"at {server_url} and calls it with boto3, then deletes the endpoint.\n\n"
            "Run the cells in order (Shift+Enter)."),
        new_code_cell(
            "import json\n"
            "import os\n"
            "from pathlib import Path\n\n"
            "import pandas as pd\n\n"
            "from tabpilot.automl import AutoML\n\n"
            f"WORKSPACE = Path(os.environ.get(\"TABPILOT_WORKSPACE\", {str(workspace)!r}))\n"
            f"JOB = {job.name!r}\n"
            f"SERVER = os.environ.get(\"TABPILOT_SERVER\", {server_url!r})  "
            "# tabpilot serve\n"
            f"ENDPOINT = {endpoint!r}\n\n"
            "job = AutoML.attach(JOB, workspace=WORKSPACE)\n"
            "described = job.describe()\n"
            "described[\"AutoMLJobStatus\"], described[\"AutoMLJobSecondaryStatus\"]"),
        new_markdown_cell("## Leaderboard\n\nEvery candidate, best first, with its "
                          "validation metrics, latency and size."),
        new_code_cell("board = job.leaderboard()\nboard.head(20)"),
        new_markdown_cell(
            "## Predict on new rows\n\nA few rows of the job's validation sample stand in "
            "for new data: replace `rows` with your own table (same columns, no target)."),
        new_code_cell(
            f"TARGET = {job.target!r}\n"
            "sample = WORKSPACE / \"jobs\" / JOB / \"validation_sample.parquet\"\n"
            "rows = pd.read_parquet(sample).drop(columns=[TARGET], errors=\"ignore\").head(5)\n"
            "model = job.best_model()\n"
            "predictions = model.predict(rows)\n"
            "rows.assign(prediction=predictions)"),
        new_markdown_cell(
            "## Deploy with boto3\n\nThe same calls as against SageMaker: a model from the "
            "best candidate's inference container, an endpoint config, an endpoint."),
        new_code_cell(
            "import boto3\n\n"
            "def client(service):\n"
            "    made = boto3.client(service, endpoint_url=SERVER, region_name=\"us-east-1\",\n"
            "                        aws_access_key_id=os.environ.get(\"AWS_ACCESS_KEY_ID\", "
            "\"tabpilot\"),\n"
            "                        aws_secret_access_key=os.environ.get("
            "\"AWS_SECRET_ACCESS_KEY\", \"tabpilot\"))\n"
            "    token = os.environ.get(\"TABPILOT_TOKEN\")\n"
            "    if token:  # a server started with --token takes it in this header\n"
            "        def add_token(request, **_):\n"
            "            request.headers[\"X-Tabpilot-Token\"] = token\n"
            "        made.meta.events.register(\"before-send.*.*\", add_token)\n"
            "    return made\n\n"
            "sm, runtime = client(\"sagemaker\"), client(\"sagemaker-runtime\")\n"
            "best = sm.describe_auto_ml_job_v2(AutoMLJobName=JOB)[\"BestCandidate\"]\n"
            "sm.create_model(ModelName=f\"{ENDPOINT}-model\", "
            "Containers=best[\"InferenceContainers\"])\n"
            "sm.create_endpoint_config(EndpointConfigName=f\"{ENDPOINT}-config\", "
            "ProductionVariants=[{\n"
            "    \"VariantName\": \"AllTraffic\", \"ModelName\": f\"{ENDPOINT}-model\",\n"
            "    \"InitialInstanceCount\": 1, \"InstanceType\": \"ml.m5.large\"}])\n"
            "sm.create_endpoint(EndpointName=ENDPOINT, "
            "EndpointConfigName=f\"{ENDPOINT}-config\")\n"
            "sm.get_waiter(\"endpoint_in_service\").wait(EndpointName=ENDPOINT, "
            "WaiterConfig={\"Delay\": 1, \"MaxAttempts\": 60})\n"
            "best[\"CandidateName\"], sm.describe_endpoint(EndpointName=ENDPOINT)"
            "[\"EndpointStatus\"]"),
        new_markdown_cell("## Call the endpoint\n\nCSV rows without a header, in the "
                          "training columns' order; the answer is one line per row."),
        new_code_cell(
            "body = rows.to_csv(header=False, index=False)\n"
            "answer = runtime.invoke_endpoint(EndpointName=ENDPOINT, ContentType=\"text/csv\",\n"
            "                                 Accept=\"application/json\", Body=body)\n"
            "served = pd.DataFrame(json.loads(answer[\"Body\"].read())[\"predictions\"])\n"
            "served.assign(local=list(model.predict(rows)))"),
        new_markdown_cell("## Clean up\n\nDelete the endpoint, its config and the model "
                          "(the job and its candidates stay)."),
        new_code_cell(
            "sm.delete_endpoint(EndpointName=ENDPOINT)\n"
            "sm.delete_endpoint_config(EndpointConfigName=f\"{ENDPOINT}-config\")\n"
            "sm.delete_model(ModelName=f\"{ENDPOINT}-model\")\n"
            "print(f\"deleted {ENDPOINT}\")"),
    ]
    nb = new_notebook(cells=cells)
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3 (tabpilot)",
                                 "language": "python"}
    nb.metadata["language_info"] = {"name": "python"}
    nb.metadata["tabpilot"] = {"job": job.name, "starter": True}
    return nb


def write(job: JobRow, server_url: str, workspace: Path) -> Path:
    """Write the starter into the job's folder under a new name; returns its path."""
    names.check(job.name, "job")
    folder = Path(job.job_dir)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{job.name}{SUFFIX}.ipynb"
    n = 2
    while path.exists():
        path = folder / f"{job.name}{SUFFIX}-{n}.ipynb"
        n += 1
    text = json.dumps(notebook(job, server_url, workspace), indent=1) + "\n"
    with open(path, "x", encoding="utf-8") as f:  # "x": never over a file made meanwhile
        f.write(text)
    return path
