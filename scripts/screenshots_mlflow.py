"""``make screenshots-mlflow``: the LLM trace, the prompt versions and a walk-forward run in MLflow's UI, captured in
a real browser from content the project's own code produces, offline, in a scratch directory.

1. A scratch MLflow store (``sqlite:///<scratch>/mlflow/mlflow.db``, artifacts beside it), a scratch Airflow home
   (SQLite metadata DB) and a throw-away PostgreSQL database on ``TEST_PG_ADMIN_URL`` (default
   ``postgresql://postgres@127.0.0.1:5432/postgres``) holding ten years of simulator bars and the dbt mart.
2. Content: strategy 4 (``llm_daily_signal``) decides TSLA and NVDA at a session of the mart against the local
   OpenAI-compatible stub (sim/llm_stub.py), inside a strategy run tagged like a trading DAG run, so each decision
   is a trace; a second wording of ``signal_v1`` becomes prompt version 2 and both versions are evaluated
   (include/llm/evaluation.py); ``strategy_backtest`` runs a walk-forward analysis of strategy 1 through
   ``dag.test()``.
3. ``mlflow server`` on a free port against that store; Playwright drives Debian's Chromium (``CHROMIUM_PATH``) to
   the trace of the BUY decision, the prompt's versions, the walk-forward parent with its window runs, and the
   stitched out-of-sample chart.
4. Stops the server (its process group, by id) and the stub, drops the database, removes the scratch directory
   (``--keep`` leaves it; ``--reuse DIR`` captures again from a kept one without producing anything).

PNGs go to ``docs/screenshots/`` (``--out`` elsewhere), 1400x900.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

from scripts.devstack import free_port, start_mlflow_server

REPO = Path(__file__).resolve().parents[1]
OUT_DIR = REPO / "docs" / "screenshots"
VIEWPORT = {"width": 1400, "height": 900}
UI_TIMEOUT_MS = 60_000
PG_ADMIN_DEFAULT = "postgresql://postgres@127.0.0.1:5432/postgres"
LLM_STRATEGY_ID, WF_STRATEGY_ID = 4, 1
SESSIONS = 2520  # 2014-01-02 .. 2024-01-05 of simulator bars
WALK_FORWARD = {"in_sample": 504, "out_of_sample": 252, "anchored": False}
WF_GRID = {"signal.slow": ["sma_50", "sma_200"], "signal.full_confidence_atr": [0.1, 0.25]}
STUB_KEY = "sk-screenshots-stub"
DAG_ID = "ibkr_trading_strategy"


def _bin(name: str) -> str:
    return str(Path(sys.executable).with_name(name))


def isolate(scratch: Path) -> dict[str, str]:
    """Point Airflow and MLflow at the scratch directory (before anything imports Airflow)."""
    home = scratch / "airflow"
    home.mkdir(parents=True, exist_ok=True)
    (scratch / "mlflow").mkdir(parents=True, exist_ok=True)
    env = {
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home / 'airflow.db'}",
        "AIRFLOW__CORE__DAGS_FOLDER": str(REPO / "dags"),
        "AIRFLOW__CORE__PLUGINS_FOLDER": str(REPO / "plugins"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__UNIT_TEST_MODE": "False",
        "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",
        "AIRFLOW__API_AUTH__JWT_SECRET": "screenshots-" + uuid.uuid4().hex * 2,
        "AIRFLOW__COSMOS__ENABLE_TELEMETRY": "False",
        "GX_ANALYTICS_ENABLED": "false",
        "DBT_SEND_ANONYMOUS_USAGE_STATS": "false",
        "MLFLOW_TRACKING_URI": f"sqlite:///{scratch / 'mlflow' / 'mlflow.db'}",
        "NO_PROXY": "127.0.0.1,localhost",
        "PYTHONPATH": str(REPO),
    }
    for var in ("MARKET_DB_URL", "IBKR_GATEWAY_URL", "STOCK_SYMBOLS", "STRATEGIES_FILE", "MLFLOW_ARTIFACT_ROOT"):
        os.environ.pop(var, None)
    os.environ.update(env)
    return env


# --- the market database ---------------------------------------------------------------------------------------


@contextlib.contextmanager
def scratch_database(admin_url: str) -> Iterator[str]:
    """A throw-away database with the raw schema, dropped at the end."""
    import psycopg2

    from include.marketdata import db

    name = f"ibkr_shots_{uuid.uuid4().hex[:10]}"
    admin = psycopg2.connect(admin_url)
    admin.autocommit = True
    with admin.cursor() as cur:
        cur.execute(f'CREATE DATABASE "{name}"')
    base = admin_url.rpartition("/")[0]
    if "@" in base and ":" not in base.split("//", 1)[1].split("@", 1)[0]:
        base = base.replace("@", ":postgres@", 1)  # dbt's profile wants a password (trust auth ignores it)
    url = f"{base}/{name}"
    try:
        with db.connection(url) as conn:
            db.ensure_schema(conn)
        yield url
    finally:
        with admin.cursor() as cur:
            cur.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.close()


# --- content ---------------------------------------------------------------------------------------------------


def _decision_session(history: object, symbols: list[str]) -> int:
    """Index (in the first symbol's rows) of the latest session where a symbol is oversold or overbought, so the
    stub answers BUY or SELL for it, not only HOLD."""
    rows = history.symbols[symbols[0]].rows  # type: ignore[attr-defined]
    by_date = {s: {r["session_date"]: r for r in history.symbols[s].rows} for s in symbols}  # type: ignore[attr-defined]
    for j in range(len(rows) - 1, 0, -1):
        day = rows[j]["session_date"]
        rsis = [by_date[s].get(day, {}).get("rsi_14") for s in symbols]
        if any(r is not None and (r < 30 or r > 70) for r in rsis):
            return j
    return len(rows) - 1


def llm_strategy_run(history: object, stub_url: str) -> dict:
    """Strategy 4 decides each of its symbols at one session inside a strategy run tagged like a trading DAG run
    (``AIRFLOW_CTX_*`` set as Airflow sets them in the task): one trace per decision."""
    from include.config import get_strategy, strategy_experiment
    from include.llm.connection import LLMEndpoint
    from include.strategies.registry import build_strategy, generate_signals
    from include.tracking import RunLogger, end_run, start_run

    config = get_strategy(LLM_STRATEGY_ID)
    symbols = list(config.symbols)
    j = _decision_session(history, symbols)
    day = history.symbols[symbols[0]].rows[j]["session_date"]  # type: ignore[attr-defined]
    latest, previous = {}, {}
    for s in symbols:
        rows = {r["session_date"]: r for r in history.symbols[s].rows}  # type: ignore[attr-defined]
        dates = sorted(d for d in rows if d <= day)
        latest[s], previous[s] = rows[dates[-1]], rows[dates[-2]]
    dag_run_id = f"manual__{day.isoformat()}T21:45:00+00:00"
    os.environ.update({"AIRFLOW_CTX_DAG_ID": DAG_ID, "AIRFLOW_CTX_DAG_RUN_ID": dag_run_id})
    run_id = start_run(
        strategy_experiment(config.name),
        dag_id=DAG_ID,
        run_id=dag_run_id,
        params={"strategy_id": config.id, "symbols": ",".join(symbols), "mode": "dry_run"},
    )
    strategy = build_strategy(config, llm_endpoint=LLMEndpoint(stub_url, "stub-signal-1", STUB_KEY))
    try:
        signals = generate_signals(strategy, symbols, latest, previous)
    finally:
        strategy.close()
    RunLogger(run_id).log_dict([s.to_dict() for s in signals], "signals/signals.json")
    end_run(run_id, "success")
    for var in ("AIRFLOW_CTX_DAG_ID", "AIRFLOW_CTX_DAG_RUN_ID"):
        os.environ.pop(var, None)
    decided = [s for s in signals if s.action != "HOLD" and s.trace_id] or [s for s in signals if s.trace_id]
    print(f"  LLM strategy run {run_id} at {day}: " + ", ".join(f"{s.symbol} {s.action}" for s in signals), flush=True)
    return {
        "strategy_run_id": run_id,
        "session": day.isoformat(),
        "trace_id": decided[0].trace_id,
        "trace_symbol": decided[0].symbol,
        "trace_action": decided[0].action,
    }


def prompt_versions(history: object, stub_url: str, scratch: Path) -> dict:
    """``signal_v1`` reworded (in a scratch copy of the prompt folder) becomes version 2; both versions evaluated."""
    from include.config import get_strategy
    from include.llm import prompts
    from include.llm.client import ChatClient
    from include.llm.evaluation import evaluate_prompt
    from include.llm.prompt_registry import sync_file
    from include.tracking import client

    config = get_strategy(LLM_STRATEGY_ID)  # before the prompt folder is swapped
    name = config.signal.prompt
    folder = scratch / "prompts"
    folder.mkdir(exist_ok=True)
    original = (prompts.PROMPTS_DIR / f"{name}.md").read_text()
    reworded = original.replace(
        "You are a cautious equity trading assistant.", "You are a patient, cautious equity trading assistant."
    )
    if reworded == original:
        raise RuntimeError(f"{name}.md changed: update the rewording in scripts/screenshots_mlflow.py")
    (folder / f"{name}.md").write_text(reworded)
    saved = prompts.PROMPTS_DIR
    prompts.PROMPTS_DIR = folder
    try:
        version = sync_file(client(), prompts.load_prompt(name))
        runs = {}
        with ChatClient(stub_url, "stub-signal-1", STUB_KEY) as chat:
            for v in (1, int(version.version)):
                runs[v] = evaluate_prompt(config, chat, history, prompt_version=v, horizon=5, sessions=10)["run_id"]
    finally:
        prompts.PROMPTS_DIR = saved
    print(f"  prompt {name}: version {version.version} registered; evaluation runs {runs}", flush=True)
    return {"prompt": name, "prompt_versions": int(version.version), "eval_runs": runs}


def walk_forward_run(market_db_url: str, symbols: list[str]) -> dict:
    """``strategy_backtest`` with ``walk_forward`` through ``dag.test()`` (retries off, as the DAG tests do)."""
    from airflow.dag_processing.dagbag import DagBag

    from include.config import get_strategy
    from include.tracking import client
    from scripts import airflow_objects

    subprocess.run([_bin("airflow"), "db", "migrate"], check=True, capture_output=True)
    airflow_objects.apply()
    os.environ.update({"MARKET_DB_URL": market_db_url, "AIRFLOW_CONN_MARKET_DB": market_db_url})
    bag = DagBag(dag_folder=str(REPO / "dags" / "strategy_backtest.py"))
    if bag.import_errors:
        raise RuntimeError(f"strategy_backtest does not import: {bag.import_errors}")
    dag = bag.dags["strategy_backtest"]
    for task in dag.tasks:
        task.retries = 0
    conf = {
        "strategy_id": WF_STRATEGY_ID,
        "symbols": symbols,
        "metric": "sharpe",
        "grid": WF_GRID,
        "walk_forward": WALK_FORWARD,
    }
    dr = dag.test(run_conf=conf)
    state = str(getattr(dr.state, "value", dr.state))
    if state != "success":
        raise RuntimeError(f"strategy_backtest ended {state}")
    mlflow = client()
    experiment = mlflow.get_experiment_by_name(f"ibkr-backtest-{get_strategy(WF_STRATEGY_ID).name}")
    (parent,) = mlflow.search_runs([experiment.experiment_id], filter_string="tags.`backtest.role` = 'parent'")
    print(f"  walk-forward parent run {parent.info.run_id} ({parent.info.run_name})", flush=True)
    return {
        "wf_experiment_id": experiment.experiment_id,
        "wf_parent_run_id": parent.info.run_id,
        "wf_parent_run_name": parent.info.run_name,
    }


def produce(scratch: Path, admin_url: str) -> dict:
    from include.backtest.engine import load_history
    from include.config import get_strategy
    from include.marketdata import db
    from sim.llm_stub import StubServer
    from sim.synthetic import build_mart, load_simulator_bars

    symbols = sorted({*get_strategy(LLM_STRATEGY_ID).symbols, *get_strategy(WF_STRATEGY_ID).symbols})
    with scratch_database(admin_url) as url:
        started = time.monotonic()
        load_simulator_bars(url, symbols, SESSIONS)
        build_mart(url, scratch / "dbt")
        print(
            f"  {SESSIONS} simulator sessions of {symbols} and the dbt mart in {time.monotonic() - started:.0f} s",
            flush=True,
        )
        with db.connection(url) as conn:
            history = load_history(conn, symbols)
        content: dict = {}
        with StubServer(api_key=STUB_KEY) as stub:
            content |= llm_strategy_run(history, stub.base_url)
            content |= prompt_versions(history, stub.base_url, scratch)
        content |= walk_forward_run(url, list(get_strategy(WF_STRATEGY_ID).symbols))
    from include.llm.tracing import flush_traces

    flush_traces()
    from include.tracking import client

    mlflow = client()
    content["llm_experiment_id"] = mlflow.get_run(content["strategy_run_id"]).info.experiment_id
    content["eval_experiment_id"] = mlflow.get_run(next(iter(content["eval_runs"].values()))).info.experiment_id
    (scratch / "content.json").write_text(json.dumps(content, indent=2, default=str))
    return content


# --- mlflow server ---------------------------------------------------------------------------------------------


@contextlib.contextmanager
def mlflow_server(scratch: Path) -> Iterator[str]:
    import httpx

    port = free_port()
    proc = start_mlflow_server(port, os.environ["MLFLOW_TRACKING_URI"], scratch / "mlflow-server.log",
                               artifact_root=scratch / "mlflow" / "artifacts")
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{url}/health", timeout=2).status_code == 200:
                    break
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"mlflow server did not start (see {scratch / 'mlflow-server.log'})")
            time.sleep(1)
        print(f"  mlflow server (pid {proc.pid}) on {url}", flush=True)
        yield url
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)  # the group the server leads (start_new_session): its workers too
            try:
                proc.wait(20)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
        print(f"  mlflow server stopped (exit code {proc.returncode})", flush=True)


# --- the browser part ------------------------------------------------------------------------------------------


def _shot(page: object, path: Path) -> Path:
    page.wait_for_timeout(1500)  # type: ignore[attr-defined]  # MLflow polls: no network idle; let tables settle
    page.screenshot(path=str(path))  # type: ignore[attr-defined]
    kb = path.stat().st_size / 1024
    print(f"  wrote {path.relative_to(REPO) if path.is_relative_to(REPO) else path} ({kb:.0f} KB)", flush=True)
    return path


def _component(page: object, component_id: str) -> object:
    return page.locator(f'[data-component-id="{component_id}"]')  # type: ignore[attr-defined]


def _close_assistant(page: object, wait: bool = False) -> None:
    """MLflow 3 opens an assistant panel beside a page (and a guidance pop-up on the traces page): close them."""
    close = _component(page, "mlflow.assistant.chat_panel.close")
    if wait:
        with contextlib.suppress(Exception):
            close.first.wait_for(timeout=10_000)  # type: ignore[attr-defined]
    page.wait_for_timeout(500)  # type: ignore[attr-defined]
    for component in ("mlflow.assistant.chat_panel.close", "mlflow.detect_issues.guidance.got_it"):
        button = _component(page, component)
        if button.count():  # type: ignore[attr-defined]
            with contextlib.suppress(Exception):  # covered or gone already: the screenshot shows what stayed
                button.first.click(timeout=5_000)  # type: ignore[attr-defined]


def capture_trace(page: object, url: str, c: dict, out: Path) -> Path:
    """The trace of one symbol decision, full screen: the span tree, and the chat span with the rendered user
    prompt (symbol, features) and the model's answer."""
    traces = f"{url}/#/experiments/{c['llm_experiment_id']}/traces"
    page.goto(traces)
    _close_assistant(page, wait=True)
    page.goto(f"{traces}?selectedEvaluationId={c['trace_id']}")
    chat = page.get_by_text("chat.completions", exact=True).first
    chat.wait_for(timeout=UI_TIMEOUT_MS)
    _component(page, "mlflow.evaluations_review.modal.fullscreen").first.click()
    chat.click(force=True)  # the drawer's resize handle overlaps the span tree
    page.get_by_text(re.compile(f"^Symbol: {c['trace_symbol']}\\s")).first.wait_for(timeout=UI_TIMEOUT_MS)
    answer = page.get_by_text(f'"action": "{c["trace_action"]}"').first
    answer.wait_for(timeout=UI_TIMEOUT_MS)
    # the span pane scrolls: bring the answer up so the user prompt above it stays in view
    page.get_by_text("raw_response", exact=True).first.evaluate("e => e.scrollIntoView({block: 'end'})")
    return _shot(page, out / "mlflow-llm-trace.png")


def capture_prompt(page: object, url: str, c: dict, out: Path) -> Path:
    """The prompt's versions (1 from the repo file, served by @production; 2 reworded), compared as text."""
    page.goto(f"{url}/#/prompts/{c['prompt']}")
    page.get_by_text(f"Version {c['prompt_versions']}", exact=True).first.wait_for(timeout=UI_TIMEOUT_MS)
    _close_assistant(page)
    page.get_by_text("Compare", exact=True).first.click()
    page.get_by_text(re.compile(r"^Comparing version")).first.wait_for(timeout=UI_TIMEOUT_MS)
    text = page.get_by_text("Text", exact=True)
    if text.count():
        text.first.click()
    return _shot(page, out / "mlflow-prompt-versions.png")


WF_COLUMNS = ("Dataset", "Source", "Models",  # unchecked: room for the window columns
              "out_of_sample_start", "chosen.signal.slow", "chosen.signal.full_confidence_atr",
              "is.sharpe", "oos.sharpe", "gap.sharpe")  # fmt: skip


def capture_walk_forward(page: object, url: str, c: dict, out: Path) -> list[Path]:
    """The backtest experiment's runs with the walk-forward parent expanded (a child run per window, with its
    out-of-sample start, chosen parameters and in-sample / out-of-sample / gap Sharpe), then the parent's stitched
    out-of-sample chart."""
    page.goto(f"{url}/#/experiments/{c['wf_experiment_id']}/runs")
    page.get_by_text(c["wf_parent_run_name"][:20]).first.wait_for(timeout=UI_TIMEOUT_MS)
    _close_assistant(page)
    _component(page, "codegen_mlflow_app_src_experiment-tracking_components_experiment-page_components_runs_cells_"
                     "runnamecellrenderer.tsx_46").first.click()  # the parent's expand button  # fmt: skip
    page.get_by_text(re.compile(r"@window7$")).first.wait_for(timeout=UI_TIMEOUT_MS)
    page.get_by_role("button", name="Columns").first.click()
    search = page.get_by_placeholder("Search columns")
    for name in WF_COLUMNS:
        search.fill(name)
        page.locator(".du-bois-light-tree-title", has_text=re.compile(f"^{re.escape(name)}$")).first.click()
    search.fill("")
    page.keyboard.press("Escape")
    # (sorted by a column the table would no longer nest the windows under their parent: left by creation time)
    shots = [_shot(page, out / "mlflow-walk-forward-runs.png")]

    chart = "charts/walk_forward_equity.png"
    page.goto(f"{url}/#/experiments/{c['wf_experiment_id']}/runs/{c['wf_parent_run_id']}/artifacts/{chart}")
    image = page.get_by_alt_text(chart, exact=True).first
    image.wait_for(timeout=UI_TIMEOUT_MS)
    _close_assistant(page)
    page.wait_for_function("img => img.complete && img.naturalWidth > 0", arg=image.element_handle(),
                           timeout=UI_TIMEOUT_MS)  # fmt: skip
    shots.append(_shot(page, out / "mlflow-walk-forward-chart.png"))
    return shots


def capture_all(url: str, content: dict, out: Path, chromium: str) -> list[Path]:
    from playwright.sync_api import sync_playwright

    out.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as pw:
        # --no-sandbox: Chromium's sandbox refuses to run as root (CI and this machine's developers are root).
        browser = pw.chromium.launch(executable_path=chromium, args=["--no-sandbox"])
        try:
            page = browser.new_context(viewport=VIEWPORT).new_page()
            page.set_default_timeout(UI_TIMEOUT_MS)
            return [
                capture_trace(page, url, content, out),
                capture_prompt(page, url, content, out),
                *capture_walk_forward(page, url, content, out),
            ]
        finally:
            browser.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=OUT_DIR, help="where the PNGs go (default docs/screenshots)")
    parser.add_argument("--keep", action="store_true", help="leave the scratch directory (path printed)")
    parser.add_argument("--reuse", type=Path, help="capture from a kept scratch directory; produce nothing")
    args = parser.parse_args(argv)
    started = time.monotonic()
    scratch = args.reuse.resolve() if args.reuse else Path(tempfile.mkdtemp(prefix="mlflow-shots-"))
    isolate(scratch)
    from scripts.screenshots import ensure_chromium

    chromium = ensure_chromium()
    try:
        if args.reuse:
            content = json.loads((scratch / "content.json").read_text())
        else:
            print(f"producing content in {scratch}", flush=True)
            content = produce(scratch, os.environ.get("TEST_PG_ADMIN_URL") or PG_ADMIN_DEFAULT)
        print(f"content ready after {time.monotonic() - started:.0f} s", flush=True)
        with mlflow_server(scratch) as url:
            shots = capture_all(url, content, args.out.resolve(), chromium)
    finally:
        if args.keep or args.reuse:
            print(f"scratch directory kept: {scratch} (--reuse {scratch} captures again)", flush=True)
        else:
            shutil.rmtree(scratch, ignore_errors=True)
    print(f"{len(shots)} screenshots in {time.monotonic() - started:.0f} s", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
