"""HTTP fuzzing of a real `tabpilot serve`: the SageMaker API at POST / (every operation
tabpilot implements, with botocore's input shapes and mutated values, unknown targets, bad
JSON, wrong content types, random bytes, oversize bodies) and an endpoint's invocations
(bad CSV and JSON, huge and negative numbers, wrong types, random bytes, oversize bodies).

Whatever comes in, the answer is never a 5xx (bar 503 from an endpoint's lane), errors
come in SageMaker's shapes, no job or transform starts, and the server keeps answering.
Deterministic (derandomized), and about half a minute on 2 cores.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from urllib.parse import quote, unquote

import apilib  # noqa: F401  (strict API shapes; tests/serving on sys.path)
import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from servinglib import ThreadServer, build_model, churn_table

from tabpilot.api.app import OPERATIONS, install
from tabpilot.serving.app import ServerSettings, server_app
from tabpilot.serving.limits import MiB
from tabpilot.store import Store

ENDPOINT = "fuzz-target-7f3a"
CAP_MB = 0.5  # the invocation cap, small so that oversize bodies are cheap to send
EXAMPLES = 1000  # per test: over 2,000 requests in all
FUZZ = settings(max_examples=EXAMPLES, deadline=None, derandomize=True, database=None,
                suppress_health_check=list(HealthCheck))
# a valid Create* job request would start a worker that trains: each loses a required member
NO_LAUNCH = {"CreateAutoMLJob": "InputDataConfig", "CreateAutoMLJobV2": "AutoMLJobInputDataConfig",
             "CreateTransformJob": "TransformInput"}
ROWS = churn_table(3, seed=11).drop(columns="label")


class Fuzzed:
    def __init__(self, server: ThreadServer, launched: list) -> None:
        self.server, self.url, self.launched = server, server.url, launched
        self.client = httpx.Client(base_url=server.url, timeout=30)
        self.count = 0
        self.statuses: dict[int, int] = {}

    def send(self, method: str, path: str, body: bytes, headers: dict[str, str]
             ) -> httpx.Response | None:
        self.count += 1
        try:
            r = self.client.request(method, path, content=body, headers=headers)
        except (httpx.WriteError, httpx.RemoteProtocolError):
            # an oversize body refused from its Content-Length while still being sent
            assert len(body) > CAP_MB * MiB, "the server dropped a connection"
            self.client = httpx.Client(base_url=self.url, timeout=30)
            return None
        self.statuses[r.status_code] = self.statuses.get(r.status_code, 0) + 1
        assert r.status_code < 500 or r.status_code == 503, (r.status_code, r.text[:500])
        return r


@pytest.fixture(scope="module")
def fuzzed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Fuzzed]:
    tmp = tmp_path_factory.mktemp("fuzz")
    s3_root, workspace = tmp / "s3", tmp / "workspace"
    (s3_root / "bucket").mkdir(parents=True)  # no training data anywhere
    model = build_model(tmp / "model" / "model")
    Store.for_workspace(workspace).put_endpoint(ENDPOINT, str(model))
    app = server_app(ServerSettings(workspace=workspace, poll_seconds=0.2,
                                    max_invocation_mb=CAP_MB, max_body_mb=4 * CAP_MB))
    ctx = install(app, workspace, s3_root)
    launched: list[tuple[str, str]] = []
    ctx.launch = lambda kind, name: launched.append((kind, name)) or 2 ** 22  # type: ignore
    with ThreadServer(app) as server:
        fuzz = Fuzzed(server, launched)
        yield fuzz
        fuzz.client.close()
    print(f"\nfuzz: {fuzz.count} requests, statuses {dict(sorted(fuzz.statuses.items()))}")


# -- values -----------------------------------------------------------------------------
JUNK = st.one_of(
    st.none(), st.booleans(), st.integers(min_value=-(10 ** 30), max_value=10 ** 30),
    st.floats(allow_nan=True, allow_infinity=True), st.text(max_size=40),
    st.just("x" * 5000), st.lists(st.integers(), max_size=3),
    st.dictionaries(st.text(max_size=5), st.integers(), max_size=2))


def _scalar(shape) -> st.SearchStrategy:
    kind, meta = shape.type_name, shape.metadata
    if kind == "string":
        if shape.enum:
            return st.sampled_from(shape.enum)
        return st.one_of(st.text(min_size=meta.get("min", 0), max_size=max(30, meta.get("min", 0))),
                         st.from_regex(r"[a-zA-Z0-9-]{1,20}", fullmatch=True),
                         st.sampled_from([ENDPOINT, "s3://bucket/input/", "s3://nobucket/x",
                                          "arn:aws:iam::123456789012:role/r"]))
    if kind in ("integer", "long"):
        return st.integers(min_value=meta.get("min"), max_value=meta.get("max"))
    if kind in ("float", "double"):
        return st.floats(min_value=meta.get("min"), max_value=meta.get("max"),
                         allow_nan=False, allow_infinity=False)
    if kind == "boolean":
        return st.booleans()
    if kind == "timestamp":
        return st.one_of(st.floats(min_value=0, max_value=4e9), st.text(max_size=20))
    return JUNK


def values(shape, depth: int = 0) -> st.SearchStrategy:
    """Values of a botocore shape, some valid, some mutated (wrong type, huge, missing)."""
    kind = shape.type_name
    if depth > 5:
        return JUNK
    if kind == "structure":
        members = shape.members
        required = set(shape.required_members)
        valid: st.SearchStrategy = st.fixed_dictionaries(
            {k: values(members[k], depth + 1) for k in sorted(required)},
            optional={k: values(members[k], depth + 1) for k in sorted(members)
                      if k not in required})
    elif kind == "list":
        valid = st.lists(values(shape.member, depth + 1), max_size=3)
    elif kind == "map":
        valid = st.dictionaries(st.text(max_size=8), values(shape.value, depth + 1), max_size=3)
    else:
        valid = _scalar(shape)
    return st.one_of(valid, valid, valid, JUNK)  # mostly well-typed, so that it goes deep


def _input_shapes() -> dict[str, object]:
    import botocore.session

    model = botocore.session.get_session().get_service_model("sagemaker")
    return {op: model.operation_model(op).input_shape for op in sorted(OPERATIONS)}


SHAPES = _input_shapes()
AMZ_JSON = "application/x-amz-json-1.1"


@st.composite
def control_plane(draw) -> tuple[bytes, dict[str, str]]:
    operation = draw(st.sampled_from(sorted(OPERATIONS)))
    target = draw(st.one_of(
        st.just(f"SageMaker.{operation}"), st.just(f"SageMaker.{operation}"),
        st.just(f"SageMaker.{operation}"), st.just(operation),
        st.sampled_from(["SageMaker.DeleteEverything", "SageMaker.", "SageMaker", "",
                         f"Other.{operation}", f"sagemaker.{operation}"]),
        st.from_regex(r"[!-~][ -~]{0,28}[!-~]", fullmatch=True)))
    params = draw(values(SHAPES[operation]))
    if isinstance(params, dict) and operation in NO_LAUNCH:
        params.pop(NO_LAUNCH[operation], None)
    body = draw(st.one_of(
        st.just(params), st.just(params), st.just(params),
        st.sampled_from([b"", b"{", b"null", b"[]", b"123", b'"text"', b"{\"a\":}",
                         b"\xff\xfe\x00", b"x" * int(4.2 * CAP_MB * MiB)]),
        st.binary(max_size=200)))
    if not isinstance(body, bytes):
        body = json.dumps(body, allow_nan=True).encode()
    content_type = draw(st.sampled_from([AMZ_JSON, AMZ_JSON, "application/json", "text/csv",
                                         "", "multipart/form-data; boundary=x"]))
    headers = {"X-Amz-Target": target}
    if content_type:
        headers["Content-Type"] = content_type
    return body, headers


def test_fuzz_the_sagemaker_api(fuzzed: Fuzzed) -> None:
    before = fuzzed.count
    @FUZZ
    @given(control_plane())
    def run(request: tuple[bytes, dict[str, str]]) -> None:
        body, headers = request
        r = fuzzed.send("POST", "/", body, headers)
        if r is not None and r.status_code >= 400:
            assert r.headers["content-type"].startswith(AMZ_JSON), r.text[:300]
            assert r.json()["__type"], r.text[:300]

    run()
    assert not fuzzed.launched  # no job or transform was started
    assert fuzzed.send("GET", "/ping", b"", {}).status_code == 200
    assert fuzzed.count - before >= EXAMPLES


# -- invocations ------------------------------------------------------------------------
NUMBERS = st.one_of(st.floats(allow_nan=True, allow_infinity=True),
                    st.integers(min_value=-(10 ** 40), max_value=10 ** 40),
                    st.sampled_from(["1e308", "-1e400", "nan", "inf", "-0", "", "0x10", "1,5"]))
CELL = st.one_of(NUMBERS, st.sampled_from(["basic", "plus", "pro", "unknown", ""]),
                 st.text(max_size=12), st.none(), st.booleans())


def _csv_rows(rows: list[list[object]]) -> bytes:
    return "\n".join(",".join(str(c) for c in row) for row in rows).encode()


@st.composite
def invocation(draw) -> tuple[str, bytes, dict[str, str]]:
    name = draw(st.one_of(st.just(ENDPOINT), st.just(ENDPOINT), st.just(ENDPOINT),
                          st.text(min_size=1, max_size=20)))
    good = ROWS.to_numpy().tolist()
    rows = draw(st.lists(st.lists(CELL, min_size=0, max_size=6), min_size=0, max_size=4))
    mixed = [row[:] for row in good]
    if mixed and draw(st.booleans()):
        i, j = draw(st.integers(0, len(mixed) - 1)), draw(st.integers(0, len(mixed[0]) - 1))
        mixed[i][j] = draw(CELL)
    body = draw(st.one_of(
        st.just(_csv_rows(good)), st.just(_csv_rows(mixed)), st.just(_csv_rows(rows)),
        st.just(json.dumps({"instances": mixed}, allow_nan=True).encode()),
        st.just(json.dumps({"instances": [dict(zip(ROWS.columns, r, strict=False))
                                          for r in mixed]}, default=str).encode()),
        st.builds(lambda v: json.dumps(v, allow_nan=True).encode(),
                  st.one_of(JUNK, st.fixed_dictionaries({"instances": JUNK}))),
        st.sampled_from([b"", b"\n\n", b"{", b"\xff\xfe\x00\x00", b",,,,",
                         b"x" * int(CAP_MB * MiB + 1), _csv_rows(good) * 30000]),
        st.binary(max_size=300)))
    content_type = draw(st.one_of(st.sampled_from(
        ["text/csv", "text/csv", "text/csv;header=present", "application/json",
         "application/jsonlines", "application/x-npy", "text/plain", ""]), st.text(max_size=20)))
    accept = draw(st.one_of(st.sampled_from(
        ["text/csv", "application/json", "application/jsonlines", "*/*", "image/png", ""]),
        st.text(max_size=15)))
    headers = {k: v for k, v in (("Content-Type", content_type), ("Accept", accept))
               # (HTTP clients refuse a value with whitespace at either end before sending)
               if v and v == v.strip() and v.isascii() and v.isprintable()}
    keys = draw(st.one_of(st.none(), st.sampled_from(
        ["predicted_label,probabilities,labels", "probability", "nope", ",,", "labels"])))
    if keys:
        headers["X-Tabpilot-Output-Keys"] = keys
    return f"/endpoints/{quote(name, safe='')}/invocations", body, headers


def test_fuzz_invocations(fuzzed: Fuzzed) -> None:
    answered, before = {"ok": 0}, fuzzed.count

    @FUZZ
    @given(invocation())
    def run(request: tuple[str, bytes, dict[str, str]]) -> None:
        path, body, headers = request
        r = fuzzed.send("POST", path, body, headers)
        if r is None:
            return
        if r.status_code >= 400 and "x-amzn-errortype" in r.headers:
            assert r.json()["message"], r.text[:300]
        elif r.status_code >= 400:  # only a name with a slash, which matches no route
            assert r.status_code == 404 and "/" in unquote(path.split("/")[2]), r.text[:300]
        else:
            answered["ok"] += 1
            assert r.content or not body.strip()

    run()
    assert answered["ok"] > 0  # the fuzz reached the model, not only the error paths
    assert fuzzed.send("GET", "/ping", b"", {}).status_code == 200
    assert fuzzed.server.thread.is_alive()
    assert fuzzed.count - before >= EXAMPLES
