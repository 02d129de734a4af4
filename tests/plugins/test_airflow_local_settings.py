"""plugins/airflow_local_settings.py preloads dbt, Cosmos and exchange_calendars only in the processes that fork
task processes."""

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
