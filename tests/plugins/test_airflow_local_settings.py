"""plugins/airflow_local_settings.py preloads dbt, Cosmos, exchange_calendars and the project's modules only in the
processes that fork task processes, and an edited project file still reaches the next task process."""

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

PLUGINS = Path(__file__).resolve().parents[2] / "plugins"
_PROBE = """
import sys
sys.argv = {argv!r}
import airflow_local_settings
print("dbt.cli.main" in sys.modules and "exchange_calendars" in sys.modules)
"""


@pytest.mark.parametrize(("argv", "preloads"), [
    (["/opt/venv/bin/airflow", "scheduler"], True),
    (["airflow", "celery", "worker", "-q", "default"], True),
    (["airflow", "api-server"], False),
    (["airflow", "dag-processor"], False),
    (["airflow", "dags", "trigger", "ibkr_trading_strategy"], False),
    (["airflow", "tasks", "test", "x", "y"], False),
    (["/usr/bin/python", "scheduler"], False),
])
def test_preload_happens_only_where_tasks_are_forked(argv, preloads):
    out = subprocess.run([sys.executable, "-c", _PROBE.format(argv=argv)], cwd=PLUGINS, capture_output=True,
                         text=True, check=True)
    assert out.stdout.strip().splitlines()[-1] == str(preloads), out.stderr[-2000:]


def _run_as_scheduler(probe: str, dags: Path, path: Path) -> subprocess.CompletedProcess:
    """``probe`` in a fresh interpreter with this DAG folder and import path, as no process forked from a preloading
    one."""
    env = {**os.environ, "AIRFLOW__CORE__DAGS_FOLDER": str(dags), "PYTHONPATH": str(path),
           "AIRFLOW__CORE__LOAD_EXAMPLES": "False"}
    env.pop("AIRFLOW_TASK_MODULES_PRELOADED_BY", None)
    return subprocess.run([sys.executable, "-c", probe], cwd=PLUGINS, env=env, capture_output=True, text=True)


_PROJECT_PROBE = """
import importlib.machinery, importlib.util, json, os, sys
from pathlib import Path
sys.argv = ["airflow", "scheduler"]
import airflow_local_settings

def in_fork(code):
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(r)
        ns = {{}}
        exec(code, ns)
        os.write(w, json.dumps(ns["out"]).encode())
        os._exit(0)
    os.close(w)
    os.waitpid(pid, 0)
    return json.loads(os.read(r, 65536))

preloaded = sys.modules["quant.signals"]
# Airflow's plugins manager runs the plugins folder's files again in each process, as here: nothing is preloaded twice
loader = importlib.machinery.SourceFileLoader("airflow_local_settings", airflow_local_settings.__file__)
again = importlib.util.module_from_spec(importlib.util.spec_from_loader("airflow_local_settings", loader))
sys.modules["airflow_local_settings"] = again
loader.exec_module(again)
report = {{"preloaded": sorted(m for m in sys.modules if m.split(".")[0] == "quant"),
          "marker": os.environ.get(airflow_local_settings.PRELOADED_BY) == str(os.getpid())}}
check = '''
import sys
fresh = "quant.signals" not in sys.modules
import quant.signals
out = {{"fresh": fresh, "value": quant.signals.VALUE, "exchange_calendars": "exchange_calendars" in sys.modules}}
'''
report["unchanged"] = in_fork(check)
Path({signals!r}).write_text("VALUE = 2\\n")  # an edit while the scheduler runs
report["edited"] = in_fork(check)
report["scheduler_still"] = preloaded.VALUE
print("REPORT " + json.dumps(report))
"""


def test_project_modules_are_preloaded_and_an_edit_reaches_the_next_task_process(tmp_path):
    """The modules the DAG files import are imported before the fork (a task process finds them), and a task process
    forked after one of their files changed imports the file as it is now."""
    (tmp_path / "dags").mkdir()
    (tmp_path / "dags" / "my_dag.py").write_text("from __future__ import annotations\n\nimport json\n\n"
                                                 "from quant.signals import VALUE\n\n\ndef f():\n"
                                                 "    from quant.unused import X  # task-time: not preloaded\n")
    quant = tmp_path / "lib" / "quant"  # on the path, not beside the DAG folder
    quant.mkdir(parents=True)
    (quant / "__init__.py").write_text("")
    (quant / "signals.py").write_text("from quant import helpers\n\nVALUE = 1\n")
    (quant / "helpers.py").write_text("")
    (quant / "unused.py").write_text("X = 1\n")
    probe = _PROJECT_PROBE.format(signals=str(quant / "signals.py"))
    out = _run_as_scheduler(probe, dags=tmp_path / "dags", path=tmp_path / "lib")
    assert out.returncode == 0, out.stdout[-2000:] + out.stderr[-3000:]
    report = json.loads(next(ln for ln in out.stdout.splitlines() if ln.startswith("REPORT "))[7:])
    assert report["preloaded"] == ["quant", "quant.helpers", "quant.signals"]
    assert report["marker"]
    assert report["unchanged"] == {"fresh": False, "value": 1, "exchange_calendars": True}
    assert report["edited"] == {"fresh": True, "value": 2, "exchange_calendars": True}
    assert report["scheduler_still"] == 1
    logged = [ln for ln in (out.stdout + out.stderr).splitlines() if "preloaded for task processes:" in ln]
    assert len(logged) == 1, logged
    assert "exchange_calendars and 3 modules of quant" in logged[0]


def test_dag_file_imports_reads_top_level_imports_only(tmp_path):
    spec = importlib.util.spec_from_file_location("_local_settings_under_test", PLUGINS / "airflow_local_settings.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)  # under pytest's argv: defines, preloads nothing

    (tmp_path / "a.py").write_text("from __future__ import annotations\nimport os, json\nfrom include.x import y\n"
                                   "from . import rel\n\ndef f():\n    import mlflow\n")
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "b.py").write_text("from include.x import z\nfrom include.w import v\n")
    (tmp_path / "broken.py").write_text("def (:\n")
    assert module.dag_file_imports(tmp_path) == ["os", "json", "include.x", "include.w"]


_REPO_PROBE = """
import os, sys
sys.argv = ["airflow", "scheduler"]
import airflow_local_settings
from include.marketdata import calendar
from include import tls
built = calendar._CALENDARS["XNYS"][0]
loaded = tls.verified_context.cache_info().currsize
pid = os.fork()
if pid == 0:  # a task process: the trading DAG's modules, the calendar and the TLS context are there, none built again
    from include.tracking.rest import RestTracking
    import httpx._transports.default as transport
    given = transport.create_ssl_context
    transport.create_ssl_context = lambda verify=True, **kw: os._exit(4) if verify is True else given(verify, **kw)
    ok = "include.trading.workflow" in sys.modules and calendar.MarketCalendar()._cal is built and loaded == 1
    RestTracking("https://mlflow.example:5000")  # an HTTPS client of the project: handed the context, loads nothing
    os._exit(0 if ok else 3)
print("CHILD", os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]))
"""


def test_this_projects_task_processes_start_with_its_modules_the_exchange_calendar_and_tls_context():
    out = _run_as_scheduler(_REPO_PROBE, dags=PLUGINS.parent / "dags", path=PLUGINS.parent)
    assert out.returncode == 0, out.stderr[-3000:]
    assert "CHILD 0" in out.stdout, out.stdout[-2000:] + out.stderr[-3000:]
