# Two commands for a fresh machine (Python 3.11, Java 17, make):
#   make repro   set up the environment, then `dvc repro` every stage on the default data
#   make test    set up the environment if needed, then run the test suite
# Nothing to install or export by hand: uv is bootstrapped into .tools/, the locked environment into .venv/.

PYTHON ?= $(shell command -v python3.11 || command -v python3)
UV_VERSION := 0.13.9
UV := .tools/bin/uv
SERVICE_MARKERS := slow or spark or redis or postgres

export UV_PYTHON_DOWNLOADS := never
export UV_NO_PROGRESS := 1
# Cache compiled bytecode even where the shell says not to: without it every stage and test process compiles
# mlflow, feast, torch ... from source again (`fraud-detection registry status`: 14 s instead of 3 s).
export PYTHONDONTWRITEBYTECODE :=

.PHONY: setup repro test test-services bench bench-cost-growth lint mlflow-server production screenshot

$(UV):
	$(PYTHON) -m venv .tools
	.tools/bin/python -m pip install --quiet --disable-pip-version-check uv==$(UV_VERSION)

setup: $(UV)  ## the locked environment in .venv (a no-op when it is up to date)
	$(UV) sync --frozen --python $(PYTHON)

repro: setup  ## every DVC stage on the default data
	$(UV) run --frozen --no-sync dvc repro

test: setup  ## the default suite (fast: no slow or service-backed tests)
	$(UV) run --frozen --no-sync pytest

test-services: setup  ## the slow and service-backed tests (Spark, Redis, PostgreSQL); CI runs them
	$(UV) run --frozen --no-sync pytest -m "$(SERVICE_MARKERS)"

bench: setup  ## benchmarks; figures go to reports/bench/
	$(UV) run --frozen --no-sync python -m bench.bench_startup
	$(UV) run --frozen --no-sync python -m bench.bench_simulate
	$(UV) run --frozen --no-sync python -m bench.bench_ingest --spark-runs 1
	$(UV) run --frozen --no-sync python -m bench.bench_features --spark
	$(UV) run --frozen --no-sync python -m bench.bench_train --stage-runs 3
	$(UV) run --frozen --no-sync python -m bench.bench_register
	$(UV) run --frozen --no-sync python -m bench.bench_batch_predict
	$(UV) run --frozen --no-sync python -m bench.bench_monitor
	$(UV) run --frozen --no-sync python -m bench.bench_serve   # needs wrk (apt-get install wrk)
	$(UV) run --frozen --no-sync python -m bench.bench_traffic
	$(UV) run --frozen --no-sync python -m bench.bench_feedback
	$(UV) run --frozen --no-sync python -m bench.bench_experiment
	$(UV) run --frozen --no-sync python -m bench.bench_online
	$(UV) run --frozen --no-sync python -m bench.experiment_validation

bench-cost-growth: setup  ## the data stages at 1x, 3x and 10x the default data (about two hours on 2 cores)
	$(UV) run --frozen --no-sync python -m bench.bench_cost_growth --scales 1,3,10 --spark-cluster

lint: setup
	$(UV) run --frozen --no-sync ruff check .
	$(UV) run --frozen --no-sync ruff format --check .

# The whole system on the production profile (docs/production.md), after `make repro`: starts what is not running
# (Redis, PostgreSQL, the MLflow server, a Spark master and two workers), runs every step on them, stops what it started.
production: setup
	$(UV) run --frozen --no-sync fraud-detection production run

# The production profile's registry: an MLflow tracking server on the local PostgreSQL (database `mlflow`, created
# if missing), artifacts under data/mlflow-server/, telemetry off (runtime/telemetry.py sets the switches, then
# becomes `mlflow server`). Then: `kedro run --env production`, `fraud-detection registry status --env production`.
# Stop it with Ctrl-C.
mlflow-server: setup
	psql -h 127.0.0.1 -U postgres -tAc "SELECT 1 FROM pg_database WHERE datname = 'mlflow'" | grep -q 1 \
		|| psql -h 127.0.0.1 -U postgres -c "CREATE DATABASE mlflow"
	$(UV) run --frozen --no-sync python -m fraud_detection.runtime.telemetry mlflow server --host 127.0.0.1 \
		--port 5000 --workers 1 \
		--backend-store-uri postgresql+psycopg2://postgres@127.0.0.1:5432/mlflow \
		--artifacts-destination data/mlflow-server/artifacts

screenshot:  ## the README's picture of the latest drift report, by headless Chromium (`apt install chromium`)
	chromium --headless --no-sandbox --disable-gpu --hide-scrollbars --virtual-time-budget=15000 \
	  --window-size=1400,1600 --screenshot=reports/screenshots/drift_report.png \
	  "file://$(CURDIR)/$$(ls reports/drift/*[0-9].html | tail -n 1)"

