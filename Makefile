# Four commands: `make demo` (pipeline end to end, offline), `make test`, `make up` (Airflow UI,
# MLflow UI and the simulator in the foreground), `make bench`. Each creates .venv on first use.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

.PHONY: demo test up bench chaos scaleout dbt airflow lint lock clean-local screenshots screenshots-mlflow

$(STAMP): requirements.txt requirements-dev.txt sim/requirements.txt constraints.txt
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	@echo "installing pinned dependencies into $(VENV) (first run: ~2 min)"
	@$(PY) -m pip install --quiet --disable-pip-version-check -r requirements.txt -r requirements-dev.txt -c constraints.txt
	@touch $(STAMP)

demo: $(STAMP)
	@$(PY) -m scripts.demo

# Test modules are shared out between TEST_WORKERS processes (pytest-xdist; whole modules, the ones that start
# stacks on one worker: tests/conftest.py).
TEST_WORKERS ?= 2
test: $(STAMP)
	@$(PY) -m pytest -n $(TEST_WORKERS) $(PYTEST_ARGS)

up: $(STAMP)
	@$(PY) -m scripts.up

bench: $(STAMP)
	@$(PY) -m bench

# Randomized order-path faults and kills against the simulator (bench/chaos.py; CHAOS_ROUNDS, CHAOS_SEED).
chaos: $(STAMP)
	@$(PY) -m bench.chaos

# CeleryExecutor with two Celery workers against the machine's Redis + PostgreSQL (throw-away DBs), ingest -> dbt ->
# strategy, then stops everything it started (scripts/celery_scaleout.py; ARGS="--symbols TSLA,NVDA --keep").
scaleout: $(STAMP)
	@$(PY) -m scripts.celery_scaleout $(ARGS)

# The Airflow and MLflow UIs of make up checked in a real browser (Playwright + Debian's chromium, installed when
# missing and root), PNGs into docs/screenshots/; runs make demo first when there is no successful run to show.
screenshots: $(STAMP)
	@command -v chromium >/dev/null 2>&1 || sh scripts/install_browser.sh
	@$(PY) -m scripts.screenshots

# MLflow's UI on an LLM trace, a prompt's versions and a walk-forward run, produced offline in a scratch dir
# (MLflow store, Airflow home, a database on TEST_PG_ADMIN_URL); PNGs into docs/screenshots/.
screenshots-mlflow: $(STAMP)
	@command -v chromium >/dev/null 2>&1 || sh scripts/install_browser.sh
	@$(PY) -m scripts.screenshots_mlflow $(ARGS)

# dbt CLI against MARKET_DB_URL (default: the embedded PostgreSQL of make demo), e.g. make dbt ARGS="test"
dbt: $(STAMP)
	@$(PY) -m scripts.dbt $(ARGS)

# The Airflow CLI with the local stack's settings (AIRFLOW_HOME .local/airflow, metadata DB, connections, ports), e.g.
# make airflow ARGS="dags trigger ibkr_trading_strategy --conf '{\"strategy_id\": 1, \"dry_run\": true}'"
airflow: $(STAMP)
	@$(PY) -m scripts.airflow_cli $(ARGS)

lint: $(STAMP)
	@$(VENV)/bin/ruff check .

# Re-resolve the full lock from requirements*.txt in a scratch virtualenv.
lock:
	rm -rf .venv-lock && $(PYTHON) -m venv .venv-lock
	.venv-lock/bin/pip install --quiet -r requirements.txt -r requirements-dev.txt
	(echo "# Full lock: pip freeze of a clean install of requirements*.txt on Python 3.11 (regenerate with make lock)."; \
	 .venv-lock/bin/pip freeze) > constraints.txt
	rm -rf .venv-lock

# Stops nothing: removes local state (embedded Postgres data, Airflow home, MLflow store).
clean-local:
	rm -rf .local
