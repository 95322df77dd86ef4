"""CreateProcessingJob through boto3 against a real `tabpilot serve` app: a script processor
(the user's script in a worker's subprocess, /opt/ml/processing paths mapped into the job
folder) reading a CSV and writing an output, failing, running past MaxRuntimeInSeconds,
stopped; scripts refused to unauthenticated callers; and the Model Monitor analyzer image
writing the baseline `tabpilot monitor baseline` writes for the same table."""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from botocore.exceptions import ClientError

sys.path.insert(0, str(Path(__file__).parent.parent / "training"))
from traininglib import KEY_ID, ROLE, SECRET, Served, ThreadServer  # noqa: E402

from tabpilot.api.app import install  # noqa: E402
from tabpilot.serving.app import ServerSettings, server_app  # noqa: E402

SKLEARN = "683313688378.dkr.ecr.us-east-1.amazonaws.com/sagemaker-scikit-learn:1.2-1-cpu-py3"
ANALYZER = "156813124566.dkr.ecr.us-east-1.amazonaws.com/sagemaker-model-monitor-analyzer"
TABLE = "tenure,plan,charges\n12,basic,70.5\n3,pro,99.0\n40,basic,20.25\n7,pro,55.0\n"
SCRIPT = '''
import argparse, csv, os, sys
parser = argparse.ArgumentParser()
parser.add_argument("--min-tenure", type=int)
parser.add_argument("--out")
args = parser.parse_args()
# SageMaker's examples write the container's paths into the script itself
rows = list(csv.DictReader(open("/opt/ml/processing/input/data/table.csv")))
kept = [r for r in rows if int(r["tenure"]) >= args.min_tenure]
os.makedirs(args.out, exist_ok=True)
with open(os.path.join(args.out, "kept.csv"), "w") as f:
    f.write("tenure,plan\\n" + "".join(f"{r['tenure']},{r['plan']}\\n" for r in kept))
print(f"kept {len(kept)} of {len(rows)} rows")
print("server variables seen:", sorted(k for k in os.environ if k.startswith(("TABPILOT_S", "AWS_"))))
print("a warning on stderr", file=sys.stderr)
'''
FAILING = 'import sys\nprint("reading the table")\nraise ValueError("column plan is missing")\n'
SLEEPING = 'import time\nprint("sleeping", flush=True)\ntime.sleep(120)\n'


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    tmp = tmp_path_factory.mktemp("processing")
    root, workspace = tmp / "s3", tmp / "workspace"
    for name, text in (("data/table.csv", TABLE), ("code/preprocess.py", SCRIPT),
                       ("code/failing.py", FAILING), ("code/sleeping.py", SLEEPING)):
        (root / "bucket" / name).parent.mkdir(parents=True, exist_ok=True)
        (root / "bucket" / name).write_text(text)
    app = server_app(ServerSettings(workspace=workspace, poll_seconds=0.2))
    install(app, workspace, root, {KEY_ID: SECRET})
    server = ThreadServer(app).__enter__()
    yield Served(server, root, workspace, tmp)
    server.__exit__()


def script_job(name: str, code: str, arguments: list[str] | None = None,
               max_seconds: int = 120) -> dict:
    """What SKLearnProcessor(...).run(code=..., inputs=[...], outputs=[...]) sends."""
    def s3_input(input_name: str, uri: str, local: str) -> dict:
        return {"InputName": input_name, "AppManaged": False, "S3Input": {
            "S3Uri": uri, "LocalPath": local, "S3DataType": "S3Prefix", "S3InputMode": "File",
            "S3DataDistributionType": "FullyReplicated"}}

    return dict(
        ProcessingJobName=name, RoleArn=ROLE,
        ProcessingInputs=[s3_input("input-1", "s3://bucket/data/table.csv",
                                   "/opt/ml/processing/input/data"),
                          s3_input("code", f"s3://bucket/code/{code}",
                                   "/opt/ml/processing/input/code")],
        ProcessingOutputConfig={"Outputs": [{"OutputName": "kept", "AppManaged": False,
                                             "S3Output": {
                                                 "S3Uri": f"s3://bucket/processed/{name}",
                                                 "LocalPath": "/opt/ml/processing/output",
                                                 "S3UploadMode": "EndOfJob"}}]},
        ProcessingResources={"ClusterConfig": {"InstanceCount": 1,
                                               "InstanceType": "ml.m5.xlarge",
                                               "VolumeSizeInGB": 30}},
        StoppingCondition={"MaxRuntimeInSeconds": max_seconds},
        AppSpecification={"ImageUri": SKLEARN,
                          "ContainerEntrypoint": ["python3",
                                                  f"/opt/ml/processing/input/code/{code}"],
                          **({"ContainerArguments": arguments} if arguments else {})},
        Environment={"STAGE": "test"})


def wait(served: Served, name: str, seconds: float = 90) -> dict:
    sm = served.client()
    until = time.time() + seconds
    while time.time() < until:
        described = sm.describe_processing_job(ProcessingJobName=name)
        if described["ProcessingJobStatus"] not in ("InProgress", "Stopping"):
            return described
        time.sleep(0.3)
    log = served.workspace / "logs" / f"processing-{name}.log"
    raise AssertionError(f"{name} still running: {log.read_text()[-2000:] if log.exists() else ''}")


def log_of(served: Served, name: str) -> str:
    return (served.workspace / "logs" / f"processing-{name}.log").read_text()


@pytest.fixture(scope="module")
def started(served: Served) -> dict[str, str]:
    """Every job of the module started at once, so that their workers start together."""
    from tabpilot.monitor.baseline import make_baseline

    make_baseline(str(served.s3_root / "bucket" / "data" / "table.csv"),
                  served.s3_root / "bucket" / "given-baseline", served.workspace)
    sm = served.client()
    arns = {}
    for job in (script_job("prep", "preprocess.py",
                           ["--min-tenure", "7", "--out=/opt/ml/processing/output"]),
                script_job("broken", "failing.py"),
                script_job("overrun", "sleeping.py", max_seconds=2),
                script_job("halted", "sleeping.py"),
                analyzer_job("baseline-churn"),
                analyzer_job("check-churn", "s3://bucket/given-baseline")):
        arns[job["ProcessingJobName"]] = sm.create_processing_job(**job)["ProcessingJobArn"]
    sm.stop_processing_job(ProcessingJobName="halted")
    return arns


def test_script_reads_a_csv_and_writes_its_output(served: Served, started: dict) -> None:
    sm = served.client()
    assert started["prep"].endswith(":processing-job/prep")
    done = wait(served, "prep")
    assert done["ProcessingJobStatus"] == "Completed", done.get("FailureReason")
    assert done["ProcessingStartTime"] <= done["ProcessingEndTime"]
    assert done["AppSpecification"]["ImageUri"] == SKLEARN
    kept = served.s3_root / "bucket" / "processed" / "prep" / "kept.csv"
    assert kept.read_text() == "tenure,plan\n12,basic\n40,basic\n7,pro\n"
    log = log_of(served, "prep")
    assert "kept 3 of 4 rows" in log and "a warning on stderr" in log
    assert "server variables seen: []" in log  # neither the store URL nor credentials
    listed = sm.list_processing_jobs(NameContains="prep")["ProcessingJobSummaries"]
    assert [(j["ProcessingJobName"], j["ProcessingJobStatus"]) for j in listed] == \
        [("prep", "Completed")]


def test_cli_logs_show_the_scripts_output(served: Served, started: dict) -> None:
    from typer.testing import CliRunner

    from tabpilot.cli import app

    wait(served, "prep")
    shown = CliRunner().invoke(app, ["logs", "prep", "--follow", "-w", str(served.workspace)])
    assert shown.exit_code == 0, shown.output
    assert "kept 3 of 4 rows" in shown.output and "a warning on stderr" in shown.output


def test_failing_slow_and_stopped_scripts(served: Served, started: dict) -> None:
    sm = served.client()
    broken = wait(served, "broken")
    assert broken["ProcessingJobStatus"] == "Failed"
    assert broken["FailureReason"] == "AlgorithmError: ValueError: column plan is missing"
    assert "Traceback" in broken["ExitMessage"]
    assert "reading the table" in log_of(served, "broken")
    overrun = wait(served, "overrun")
    assert overrun["ProcessingJobStatus"] == "Failed"
    assert overrun["FailureReason"].startswith("MaxRuntimeExceeded")
    assert "sleeping" in log_of(served, "overrun")
    halted = wait(served, "halted")
    assert halted["ProcessingJobStatus"] == "Stopped", halted.get("FailureReason")
    assert not (served.s3_root / "bucket" / "processed" / "halted").exists()
    with pytest.raises(ClientError, match="only an InProgress job"):
        sm.stop_processing_job(ProcessingJobName="halted")


def test_bad_requests_fail_in_one_line(served: Served) -> None:
    sm = served.client()
    job = script_job("no-image-program", "preprocess.py")
    job["AppSpecification"] = {"ImageUri": SKLEARN}
    with pytest.raises(ClientError, match="its own program"):
        sm.create_processing_job(**job)
    job = script_job("outside", "preprocess.py")
    job["ProcessingInputs"][0]["S3Input"]["LocalPath"] = "/etc/data"
    with pytest.raises(ClientError, match="under /opt/ml/processing/"):
        sm.create_processing_job(**job)
    with pytest.raises(ClientError, match="Could not find requested job"):
        sm.describe_processing_job(ProcessingJobName="never-made")


def test_scripts_need_an_authenticated_caller(tmp_path: Path) -> None:
    """An open server (no token, no credentials) runs no caller's script, unless it was
    started with --allow-processing-scripts and the request came to a loopback name; an
    allowed proxy name (--allow-host) never counts as loopback."""
    (tmp_path / "s3" / "bucket").mkdir(parents=True)
    request = json.dumps({**script_job("x", "missing.py")})
    headers = {"X-Amz-Target": "SageMaker.CreateProcessingJob",
               "Content-Type": "application/x-amz-json-1.1"}
    for allow, cases in ((False, [(None, True)]),
                         (True, [("tabpilot.internal", True), (None, False)])):
        workspace = tmp_path / f"ws-{allow}"
        app = server_app(ServerSettings(workspace=workspace, allowed_hosts=["tabpilot.internal"]))
        install(app, workspace, tmp_path / "s3", allow_processing_scripts=allow)
        with ThreadServer(app) as server:
            for host, refused in cases:
                sent = {**headers, **({"Host": host} if host else {})}
                answer = httpx.post(server.url + "/", content=request, headers=sent, timeout=30)
                analyzer = httpx.post(server.url + "/", headers=sent, timeout=30,
                                      content=json.dumps({**script_job("y", "missing.py"),
                                                          "AppSpecification": {
                                                              "ImageUri": ANALYZER}}))
                # the analyzer runs tabpilot's own code: admitted, failing on the input
                assert analyzer.status_code == 400, analyzer.text
                if refused:
                    assert answer.status_code == 403, (allow, host, answer.text)
                    assert answer.json()["__type"] == "AccessDeniedException"
                    assert "authenticated caller" in answer.json()["message"]
                else:  # admitted: it fails later, on the missing input
                    assert answer.status_code == 400, answer.text
                    assert "does not exist" in answer.json()["message"]


def analyzer_job(name: str, baseline: str | None = None) -> dict:
    """What DefaultModelMonitor.suggest_baseline sends (with `baseline`: an execution's
    inputs and environment, as a schedule's processing job has them)."""
    inputs = [{"InputName": "baseline_dataset_input", "S3Input": {
        "S3Uri": "s3://bucket/data/table.csv", "S3DataType": "S3Prefix",
        "LocalPath": "/opt/ml/processing/input/baseline_dataset_input",
        "S3InputMode": "File"}}]
    env = {"dataset_format": json.dumps({"csv": {"header": True,
                                                 "output_columns_position": "START"}}),
           "dataset_source": "/opt/ml/processing/input/baseline_dataset_input",
           "output_path": "/opt/ml/processing/output", "publish_cloudwatch_metrics": "Disabled"}
    if baseline:
        inputs.append({"InputName": "baseline", "S3Input": {
            "S3Uri": baseline, "S3DataType": "S3Prefix",
            "LocalPath": "/opt/ml/processing/baseline", "S3InputMode": "File"}})
        env.update(baseline_constraints="/opt/ml/processing/baseline/constraints.json",
                   baseline_statistics="/opt/ml/processing/baseline/statistics.json")
    return dict(
        ProcessingJobName=name, RoleArn=ROLE, ProcessingInputs=inputs,
        ProcessingOutputConfig={"Outputs": [{"OutputName": "monitoring_output", "S3Output": {
            "S3Uri": f"s3://bucket/{name}", "LocalPath": "/opt/ml/processing/output",
            "S3UploadMode": "EndOfJob"}}]},
        ProcessingResources={"ClusterConfig": {"InstanceCount": 1,
                                               "InstanceType": "ml.m5.xlarge",
                                               "VolumeSizeInGB": 20}},
        AppSpecification={"ImageUri": ANALYZER}, Environment=env)


def test_analyzer_baseline_equals_tabpilot_monitor_baseline(served: Served,
                                                            started: dict) -> None:
    from tabpilot.monitor.baseline import load_baseline

    done = wait(served, "baseline-churn")
    assert done["ProcessingJobStatus"] == "Completed", done.get("FailureReason")
    made = served.s3_root / "bucket" / "baseline-churn"
    expected = load_baseline(served.s3_root / "bucket" / "given-baseline")  # monitor baseline
    for name, value in (("statistics.json", expected.statistics),
                        ("constraints.json", expected.constraints)):
        assert json.loads((made / name).read_text()) == value, name
    # an execution: the same table checked against that baseline, through the same image
    assert wait(served, "check-churn")["ProcessingJobStatus"] == "Completed"
    report = json.loads((served.s3_root / "bucket" / "check-churn" /
                         "constraint_violations.json").read_text())
    assert report == {"violations": []}
    assert (served.s3_root / "bucket" / "check-churn" / "statistics.json").is_file()
