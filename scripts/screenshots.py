"""``make screenshots``: the Airflow and MLflow UIs of ``make up``, checked and captured in a real browser.

1. Makes sure the local metadata DB has a successful ``market_data_models`` run (else runs ``make demo``'s
   ``python -m scripts.demo`` first).
2. Starts ``make up``'s ``python -m scripts.up`` and reads the Airflow login it prints once healthy.
3. With Playwright driving Debian's Chromium (``CHROMIUM_PATH``, default ``/usr/bin/chromium``): logs in
   through Airflow's login form, captures the DAG list, the ``dbt_market`` task group expanded in the
   graph of a successful run, that run's grid, then the latest MLflow run of a strategy experiment
   (``ibkr-strategy-<name>`` by default) and one of its chart PNGs.
4. With ``--trigger-conf JSON``: triggers ``ibkr_trading_strategy`` through its trigger form (Advanced Options ->
   Configuration JSON), waits for the run (REST API) and reports its state, tasks, the symbols ``read_features``
   read and the simulator's order-endpoint requests.
5. Stops ``make up`` with SIGINT (its Ctrl-C path) and waits for it.

PNGs go to ``docs/screenshots/`` (``--out`` elsewhere); ``--report FILE`` writes what the pages showed as
JSON (tests/ui asserts on it). Ports and the state directory follow ``make up``'s variables
(``AIRFLOW_PORT``, ``MLFLOW_PORT``, ``LOCAL_STACK_DIR``, ...).
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
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote

import httpx

from scripts.devstack import LOCAL, REPO, StackPorts, embedded_postgres, port_open

DAG_ID = "market_data_models"
GROUP_ID = "dbt_market"
OUT_DIR = REPO / "docs" / "screenshots"
VIEWPORT = {"width": 1400, "height": 900}
GRAPH_VIEWPORT = {"width": 1400, "height": 640}
UP_START_TIMEOUT = 300.0  # seconds: migrations + airflow standalone's first start on 2 shared cores
UP_STOP_TIMEOUT = 120.0
UI_TIMEOUT_MS = 30_000
TRADING_DAG_ID = "ibkr_trading_strategy"
TRIGGER_RUN_TIMEOUT = 420.0  # seconds: a run that fetches, models and checks three new symbols, on 2 busy cores
# Client Portal order endpoints (place, what-if, modify, cancel, reply to a warning); a dry run calls none of them.
_ORDER_ENDPOINT = re.compile(r"^/iserver/(account/[^/]+/orders?(/|$)|reply/)")
_LOGIN_LINE = re.compile(r"Airflow UI : (?P<url>\S+)\s+login: (?P<user>[^ /]+) / (?P<password>\S+)")


def chromium_path() -> str | None:
    """The system Chromium Playwright drives (it never downloads a browser of its own)."""
    configured = os.environ.get("CHROMIUM_PATH")
    if configured:
        return configured if Path(configured).exists() else None
    return shutil.which("chromium") or ("/usr/bin/chromium" if Path("/usr/bin/chromium").exists() else None)


def ensure_chromium() -> str:
    """Chromium's path, installing Debian's package first when it is missing (scripts/install_browser.sh)."""
    path = chromium_path()
    if path is None:
        subprocess.run(["sh", str(REPO / "scripts" / "install_browser.sh")], check=True)
        path = chromium_path()
    if path is None:
        raise RuntimeError("Chromium not found after scripts/install_browser.sh; set CHROMIUM_PATH")
    return path


# --- the pipeline run to show ---------------------------------------------------------------------------------


def _metadata_sqlalchemy_url() -> tuple[str, object | None]:
    """The metadata DB ``make demo``/``make up`` use (see devstack.airflow_env), and a server started to read it."""
    configured = os.environ.get("AIRFLOW__DATABASE__SQL_ALCHEMY_CONN")
    if configured:
        return configured, None
    if os.environ.get("MARKET_DB_URL"):
        return f"sqlite:///{LOCAL / 'airflow' / 'airflow.db'}", None
    postgres = embedded_postgres()
    if not (postgres.pgdata / "PG_VERSION").exists():
        return "", None  # never initialised: nothing has run yet
    postgres.start()
    return postgres.dsn("airflow").replace("postgresql://", "postgresql+psycopg2://"), postgres


def successful_runs(dag_id: str = DAG_ID) -> int:
    """How many successful runs of ``dag_id`` the local metadata DB holds (0 when it does not exist yet)."""
    import sqlalchemy as sa

    url, started = _metadata_sqlalchemy_url()
    try:
        if not url:
            return 0
        engine = sa.create_engine(url)
        try:
            with engine.connect() as conn:
                query = sa.text("SELECT count(*) FROM dag_run WHERE dag_id = :d AND state = 'success'")
                return int(conn.execute(query, {"d": dag_id}).scalar_one())
        except sa.exc.SQLAlchemyError:
            return 0  # no such database or no tables yet
        finally:
            engine.dispose()
    finally:
        if started is not None and started.started_here:
            started.stop()


def ensure_pipeline_run() -> None:
    if successful_runs() > 0:
        print(f"metadata DB has a successful {DAG_ID} run", flush=True)
        return
    print(f"no successful {DAG_ID} run yet: running make demo (python -m scripts.demo)", flush=True)
    subprocess.run([sys.executable, "-m", "scripts.demo"], cwd=REPO, check=True)


# --- make up as a subprocess ----------------------------------------------------------------------------------


@dataclass
class RunningUp:
    airflow_url: str
    user: str
    password: str
    mlflow_url: str
    output: list[str] = field(default_factory=list)


def _pump(stream: object, sink: list[str], log: object, found: threading.Event) -> None:
    for line in stream:  # type: ignore[attr-defined]
        sink.append(line)
        log.write(line)  # type: ignore[attr-defined]
        log.flush()  # type: ignore[attr-defined]
        if _LOGIN_LINE.search(line):
            found.set()


def _wait_http(url: str, deadline: float) -> None:
    while time.monotonic() < deadline:
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(url, timeout=2).status_code == 200:
                return
        time.sleep(1)
    raise TimeoutError(f"{url} did not answer 200 in time")


def stop_up(proc: subprocess.Popen[str], timeout: float = UP_STOP_TIMEOUT) -> int:
    """SIGINT, as a terminal's Ctrl-C: up.py then stops Airflow (SIGINT), MLflow, the simulator and PostgreSQL."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            print(f"make up did not stop within {timeout:.0f} s; killing its process group", file=sys.stderr)
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    return proc.returncode


@contextlib.contextmanager
def running_up(timeout: float = UP_START_TIMEOUT) -> Iterator[RunningUp]:
    """``make up`` (``python -m scripts.up``) until the block ends; yields its printed login once it is healthy."""
    for var, default in (("AIRFLOW_PORT", "8080"), ("MLFLOW_PORT", "5500")):
        if port_open(int(os.environ.get(var, default))):
            raise RuntimeError(f"port {os.environ.get(var, default)} is in use (a running make up?): stop it, "
                               f"or set {var} and the other ports (see the README, The UIs)")  # fmt: skip
    LOCAL.mkdir(parents=True, exist_ok=True)
    log_path = LOCAL / "screenshots-up.log"
    proc = subprocess.Popen(
        [sys.executable, "-m", "scripts.up"], cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        text=True, errors="replace", start_new_session=True,  # our own Ctrl-C must reach it only through us
    )  # fmt: skip
    output: list[str] = []
    found = threading.Event()
    with open(log_path, "a") as log:
        pump = threading.Thread(target=_pump, args=(proc.stdout, output, log, found), daemon=True)
        pump.start()
        try:
            deadline = time.monotonic() + timeout
            while not found.wait(1):
                if proc.poll() is not None or time.monotonic() > deadline:
                    tail = "".join(output[-30:])
                    raise RuntimeError(f"make up did not become healthy (see {log_path}):\n{tail}")
            match = next(m for line in output if (m := _LOGIN_LINE.search(line)))
            mlflow_url = f"http://127.0.0.1:{os.environ.get('MLFLOW_PORT', '5500')}"
            _wait_http(f"{mlflow_url}/health", deadline)
            yield RunningUp(match["url"], match["user"], match["password"], mlflow_url, output)
        finally:
            code = stop_up(proc)
            pump.join(10)
            print(f"make up stopped (exit code {code})", flush=True)


# --- the browser part -----------------------------------------------------------------------------------------


def _shot(page: object, path: Path) -> str:
    page.screenshot(path=str(path))  # type: ignore[attr-defined]
    print(f"  wrote {path.relative_to(REPO) if path.is_relative_to(REPO) else path}", flush=True)
    return str(path)


def login(page: object, up: RunningUp) -> dict:
    """Sign in through Airflow's login form (simple auth manager); report whether the form is gone after."""
    page.goto(up.airflow_url)
    page.get_by_label("Username").fill(up.user)
    page.get_by_label("Password").fill(up.password)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(lambda url: "/auth/login" not in url, timeout=UI_TIMEOUT_MS)
    page.wait_for_load_state("networkidle")
    return {"url_after_login": page.url, "login_form_after_login": page.get_by_label("Password").count() > 0}


def latest_successful_run(page: object, up: RunningUp) -> str:
    """The newest successful run's id, from Airflow's REST API with the browser's session (its _token cookie)."""
    response = page.request.get(
        f"{up.airflow_url}/api/v2/dags/{DAG_ID}/dagRuns",
        params={"state": "success", "order_by": "-start_date", "limit": 1},
    )
    if not response.ok:
        raise RuntimeError(f"listing {DAG_ID} runs failed: HTTP {response.status} {response.text()[:200]}")
    runs = response.json()["dag_runs"]
    if not runs:
        raise RuntimeError(f"no successful {DAG_ID} run in Airflow: run make demo")
    return runs[0]["dag_run_id"]


def _expand_task_groups(page: object) -> None:
    """Expand every task group (the button is disabled when the UI remembers them expanded already)."""
    button = page.get_by_role("button", name="Expand all task groups")
    button.wait_for()
    if button.is_enabled():
        button.click()


def capture_dags(page: object, up: RunningUp, out: Path) -> dict:
    page.goto(f"{up.airflow_url}/dags")
    page.wait_for_load_state("networkidle")
    page.get_by_role("link", name=DAG_ID, exact=True).first.wait_for(timeout=UI_TIMEOUT_MS)
    return {"dags_png": _shot(page, out / "airflow-dags.png")}


def capture_graph(page: object, up: RunningUp, run_id: str, out: Path) -> dict:
    """The run's graph with every task group expanded: the Cosmos group and one node per dbt model."""
    page.goto(f"{up.airflow_url}/dags/{DAG_ID}/runs/{run_id}")
    page.wait_for_load_state("networkidle")
    page.get_by_role("button", name=re.compile("^Show Graph")).click()
    _expand_task_groups(page)
    with contextlib.suppress(Exception):  # more room for the graph; absent when the panel is already closed
        page.get_by_role("button", name="Collapse Details Panel").click(timeout=3000)
    nodes = page.locator(".react-flow__node")
    nodes.filter(has_text=f"{GROUP_ID}").first.wait_for(timeout=UI_TIMEOUT_MS)
    page.get_by_text("_model_build").first.wait_for(timeout=UI_TIMEOUT_MS)  # the group's children are drawn
    page.wait_for_load_state("networkidle")
    page.get_by_role("button", name="Fit View").click()
    page.wait_for_timeout(800)  # the fit animation
    texts = nodes.all_inner_texts()
    return {"graph_png": _shot(page, out / "airflow-dbt-task-group-graph.png"), "graph_nodes": texts}


def capture_run(page: object, up: RunningUp, run_id: str, out: Path) -> dict:
    """The run's page in grid view (task groups expanded): its state badge and green task instances."""
    page.goto(f"{up.airflow_url}/dags/{DAG_ID}/runs/{run_id}")
    page.wait_for_load_state("networkidle")
    grid = page.get_by_role("button", name=re.compile("^Show Grid"))
    if grid.count():
        grid.first.click()
    _expand_task_groups(page)
    page.get_by_role("heading", name=re.compile(re.escape(run_id))).wait_for(timeout=UI_TIMEOUT_MS)
    page.wait_for_load_state("networkidle")
    # The run's title row: its id and the state badge beside it ("Success").
    heading = page.get_by_role("heading", name=re.compile(re.escape(run_id))).first.locator("xpath=..").inner_text()
    states = page.get_by_role("table").first.inner_text() if page.get_by_role("table").count() else ""
    return {"run_png": _shot(page, out / "airflow-run-grid.png"), "run_id": run_id, "run_heading": heading,
            "task_table": states}  # fmt: skip


def _latest_strategy_run(mlflow_url: str) -> tuple[str, str, str, str]:
    """(experiment id, experiment name, run id, run name) of the newest finished strategy run."""
    api = f"{mlflow_url}/api/2.0/mlflow"
    experiments = httpx.post(f"{api}/experiments/search", json={"max_results": 1000}, timeout=10).json()
    from include.config import strategy_experiments

    names = strategy_experiments()  # workflow.yaml's mlflow.experiment_name
    ids = {e["experiment_id"]: e["name"] for e in experiments.get("experiments", []) if e["name"] in names}
    if not ids:
        raise RuntimeError(f"no strategy experiment ({', '.join(sorted(names))}) in MLflow: run make demo")
    runs = httpx.post(f"{api}/runs/search", timeout=10, json={
        "experiment_ids": list(ids), "filter": "attributes.status = 'FINISHED'",
        "order_by": ["attributes.start_time DESC"], "max_results": 1,
    }).json().get("runs", [])  # fmt: skip
    if not runs:
        raise RuntimeError("no finished strategy run in MLflow: run make demo")
    info = runs[0]["info"]
    return info["experiment_id"], ids[info["experiment_id"]], info["run_id"], info["run_name"]


def _chart_artifacts(mlflow_url: str, run_id: str) -> list[str]:
    listing = httpx.get(f"{mlflow_url}/api/2.0/mlflow/artifacts/list", params={"run_id": run_id, "path": "charts"},
                        timeout=10).json()  # fmt: skip
    return sorted(f["path"] for f in listing.get("files", []) if f["path"].endswith(".png"))


def capture_mlflow(page: object, up: RunningUp, out: Path) -> dict:
    """The strategy run's page (metrics, params, tags) and one chart PNG in its artifact viewer."""
    experiment_id, experiment, run_id, run_name = _latest_strategy_run(up.mlflow_url)
    charts = _chart_artifacts(up.mlflow_url, run_id)
    if not charts:
        raise RuntimeError(f"MLflow run {run_id} has no charts/*.png artifact")
    run_url = f"{up.mlflow_url}/#/experiments/{experiment_id}/runs/{run_id}"
    page.goto(run_url)
    title = page.get_by_text(run_name, exact=True).first
    title.wait_for(timeout=UI_TIMEOUT_MS)
    # MLflow 3 opens runs in its GenAI layout with an assistant panel; the classic run page shows metrics/params.
    training = page.get_by_text("Model training", exact=True)
    if training.count():
        training.first.click()
        page.goto(run_url)
    close = page.locator('[data-component-id="mlflow.assistant.chat_panel.close"]')
    if close.count():
        close.first.click()
    page.get_by_text(run_name, exact=True).first.wait_for(timeout=UI_TIMEOUT_MS)
    page.get_by_text("Metrics", exact=False).first.wait_for(timeout=UI_TIMEOUT_MS)
    page.wait_for_timeout(1000)  # tables render after their data arrives; MLflow polls, so no network idle
    run_text = page.locator("body").inner_text()
    run_png = _shot(page, out / "mlflow-strategy-run.png")

    chart = charts[0]
    page.goto(f"{run_url}/artifacts/{chart}")
    image = page.get_by_alt_text(chart, exact=True).first  # the viewer's <img alt="charts/X.png" src="blob:...">
    image.wait_for(timeout=UI_TIMEOUT_MS)
    page.wait_for_function("img => img.complete && img.naturalWidth > 0", arg=image.element_handle(),
                           timeout=UI_TIMEOUT_MS)  # fmt: skip
    size = image.evaluate("img => [img.naturalWidth, img.naturalHeight]")
    page.wait_for_timeout(1000)  # the artifact tree's expand animation
    return {"mlflow_experiment": experiment, "mlflow_run_id": run_id, "mlflow_run_name": run_name,
            "mlflow_run_page_text": run_text, "mlflow_run_png": run_png, "chart_artifact": chart,
            "chart_natural_size": size, "chart_png": _shot(page, out / "mlflow-strategy-chart.png")}  # fmt: skip


def order_endpoint_requests(by_path: dict[str, int]) -> dict[str, int]:
    """The order-endpoint paths among the simulator's request counts (``/sim/admin/stats`` ``by_path``)."""
    return {path: count for path, count in by_path.items() if _ORDER_ENDPOINT.match(path)}


def simulator_requests() -> dict[str, int] | None:
    """Requests per path the stack's simulator served (None with an external gateway)."""
    if os.environ.get("IBKR_GATEWAY_URL"):
        return None
    admin = StackPorts.from_env().simulator_url.split("/v1/api")[0]
    return httpx.get(f"{admin}/sim/admin/stats", timeout=10).json()["by_path"]


def trigger_from_form(page: object, up: RunningUp, conf: dict, dag_id: str = TRADING_DAG_ID) -> dict:
    """Trigger ``dag_id`` from its trigger form with ``conf`` in Airflow 3's "Configuration JSON" editor (under
    "Advanced Options"); returns the conf the form sent and the new run's id."""
    page.goto(f"{up.airflow_url}/dags/{dag_id}")
    page.wait_for_load_state("networkidle")
    page.get_by_role("button", name=re.compile("^Trigger")).first.click()
    dialog = page.get_by_role("dialog")
    dialog.get_by_text("Advanced Options", exact=True).click()
    dialog.locator(".monaco-editor .view-lines").first.click()
    page.keyboard.press("ControlOrMeta+A")
    page.keyboard.insert_text(json.dumps(conf))
    page.keyboard.press("Shift+ControlOrMeta+End")  # the editor's auto-closed brackets and quotes after the text
    page.keyboard.press("Delete")
    dialog.get_by_text("Configuration JSON", exact=True).click()  # blur: the form takes the JSON and validates it
    submit = dialog.get_by_role("button", name="Trigger", exact=True)
    with page.expect_response(lambda r: r.request.method == "POST" and r.url.endswith(f"/{dag_id}/dagRuns")) as sent:
        submit.click()
    response = sent.value
    if not response.ok:
        raise RuntimeError(f"the trigger form's request failed: HTTP {response.status} {response.text()[:300]}")
    return {"request_conf": json.loads(response.request.post_data or "{}").get("conf"),
            "run_id": response.json()["dag_run_id"]}  # fmt: skip


def wait_for_run(page: object, up: RunningUp, run_id: str, dag_id: str = TRADING_DAG_ID,
                 timeout: float = TRIGGER_RUN_TIMEOUT) -> dict:
    """The run's final state (or its state at the timeout), its task states and what read_features read."""
    api = f"{up.airflow_url}/api/v2/dags/{dag_id}/dagRuns/{quote(run_id, safe='')}"
    deadline = time.monotonic() + timeout
    while (state := page.request.get(api).json()["state"]) not in ("success", "failed"):
        if time.monotonic() > deadline:
            break
        page.wait_for_timeout(3000)
    tasks = {t["task_id"]: t["state"] for t in page.request.get(f"{api}/taskInstances").json()["task_instances"]}
    xcom = page.request.get(f"{api}/taskInstances/read_features/xcomEntries/return_value",
                            params={"deserialize": "true"})  # fmt: skip
    features = (xcom.json().get("value") or {}) if xcom.ok else {}
    return {"state": state, "tasks": tasks, "features_latest": sorted(features.get("latest") or {}),
            "features_missing": list(features.get("missing") or [])}  # fmt: skip


def capture_all(up: RunningUp, out: Path, chromium: str, trigger_conf: dict | None = None) -> dict:
    from playwright.sync_api import sync_playwright

    out.mkdir(parents=True, exist_ok=True)
    report: dict = {}
    with sync_playwright() as pw:
        # --no-sandbox: Chromium's sandbox refuses to run as root (CI and this machine's developers are root).
        browser = pw.chromium.launch(executable_path=chromium, args=["--no-sandbox"])
        try:
            context = browser.new_context(viewport=VIEWPORT)
            context.set_default_timeout(UI_TIMEOUT_MS)
            page = context.new_page()
            report |= login(page, up)
            run_id = latest_successful_run(page, up)
            report |= capture_dags(page, up, out)
            # The graph at twice the pixel density (fitted to 1400 px its node labels are small), in a shorter
            # window: it is much wider than tall.
            sharp = browser.new_context(viewport=GRAPH_VIEWPORT, device_scale_factor=2,
                                        storage_state=context.storage_state())  # fmt: skip
            sharp.set_default_timeout(UI_TIMEOUT_MS)
            report |= capture_graph(sharp.new_page(), up, run_id, out)
            sharp.close()
            report |= capture_run(page, up, run_id, out)
            report |= capture_mlflow(page, up, out)
            if trigger_conf is not None:  # after the captures: this run must not become the MLflow run shown
                started = time.monotonic()
                trigger = trigger_from_form(page, up, trigger_conf)
                trigger |= wait_for_run(page, up, trigger["run_id"])
                trigger["seconds"] = round(time.monotonic() - started, 1)
                trigger["simulator_requests"] = simulator_requests()
                print(f"  {TRADING_DAG_ID} from the trigger form: {trigger['state']} in {trigger['seconds']:.0f} s",
                      flush=True)  # fmt: skip
                report["trigger"] = trigger
        finally:
            browser.close()
    return report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=OUT_DIR, help="where the PNGs go (default docs/screenshots)")
    parser.add_argument("--report", type=Path, help="write what the pages showed as JSON here")
    parser.add_argument("--trigger-conf", type=json.loads, metavar="JSON",
                        help=f"also trigger {TRADING_DAG_ID} from its trigger form with this conf and wait for the run")
    args = parser.parse_args(argv)
    started = time.monotonic()
    chromium = ensure_chromium()
    ensure_pipeline_run()
    print(f"pipeline run ready after {time.monotonic() - started:.0f} s; starting make up", flush=True)
    with running_up() as up:
        print(f"make up is healthy after {time.monotonic() - started:.0f} s; capturing with {chromium}", flush=True)
        report = capture_all(up, args.out.resolve(), chromium, args.trigger_conf)
    report["seconds"] = round(time.monotonic() - started, 1)
    if args.report:
        args.report.write_text(json.dumps(report, indent=2))
    print(f"screenshots done in {report['seconds']:.0f} s", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
