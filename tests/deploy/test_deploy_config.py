"""What the deployment files configure agrees with what the code reads: env var names, connection ids and layouts,
pools, pins; and the images' build steps work (Airflow kept, manifest without a database, simulator's imports)."""

from __future__ import annotations

import fnmatch
import importlib.util
import json
import re
import subprocess
import sys
import uuid
from importlib import metadata
from pathlib import Path

import pytest
from deploy_files import REPO, SETTINGS, service_env
from packaging.requirements import Requirement

# Read by Airflow itself, the images or third-party libraries, not by project code.
THIRD_PARTY_ENV = {
    "GX_ANALYTICS_ENABLED",
    "DBT_SEND_ANONYMOUS_USAGE_STATS",
    "MLFLOW_DISABLE_TELEMETRY",
    "DO_NOT_TRACK",
    "DUMB_INIT_SETSID",
}
CODE_DIRS = ("include", "dags", "plugins", "scripts")
_ENV_READ = re.compile(
    r"""(?:environ\.get|env\.get|getenv|environ\[|parse_bool\(|_int\(|_float\()\s*\(?\s*["']([A-Z][A-Z0-9_]+)["']"""
)


def _load_script(name: str):
    spec = importlib.util.spec_from_file_location(f"deploy_{name}", REPO / "docker" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def env_read_by_code() -> set[str]:
    names = set()
    for folder in CODE_DIRS:
        for path in (REPO / folder).rglob("*.py"):
            names |= set(_ENV_READ.findall(path.read_text()))
    from include.settings import LIVE_OPT_IN_ENV, PLAIN_ENV_VARS

    names |= {LIVE_OPT_IN_ENV, *PLAIN_ENV_VARS}
    return names


def test_project_env_vars_are_spelled_as_the_code_reads_them(compose, override):
    read = env_read_by_code()
    assert {"IBKR_GATEWAY_URL", "MLFLOW_TRACKING_URI", "MLFLOW_UI_URL", "QUALITY_REPORTS_DIR"} <= read
    airflow_services = {
        "compose": [n for n in compose["services"] if n.startswith("airflow-") and n != "airflow-db"],
        "override": ["scheduler", "dag-processor", "triggerer", "api-server"],
    }
    for which, spec in (("compose", compose), ("override", override)):
        for name in airflow_services[which]:
            for key in service_env(spec["services"][name]):
                if key.startswith(("AIRFLOW__", "AIRFLOW_CONN_")) or key in THIRD_PARTY_ENV:
                    continue
                if name == "airflow-init" and key.startswith(("AIRFLOW_ADMIN_", "AIRFLOW_SETTINGS_FILE")):
                    assert key in (REPO / "docker" / "airflow_init.py").read_text()
                    continue
                assert key in read, f"{which}/{name}: {key} is read by no project code (misspelt?)"
    for key in ("MLFLOW_TRACKING_URI", "IBKR_GATEWAY_URL", "MLFLOW_UI_URL"):
        assert key in service_env(compose["services"]["airflow-worker"])


def test_third_party_server_env_vars_exist(compose):
    """The MLflow server is configured through env vars only: each must be one MLflow reads."""
    mlflow_dir = Path(importlib.util.find_spec("mlflow").origin).parent
    sources = "".join(
        p.read_text()
        for p in [
            mlflow_dir / "environment_variables.py",
            mlflow_dir / "utils" / "cli_args.py",
            mlflow_dir / "cli" / "__init__.py",
        ]
    )
    for key in service_env(compose["services"]["mlflow"]):
        if key.startswith("MLFLOW_"):
            assert f'"{key}"' in sources, f"MLflow reads no {key}"


def test_mlflow_accepts_the_host_names_airflow_and_the_browser_use(compose, override):
    from mlflow.server.security_utils import get_default_allowed_hosts, is_allowed_host_header

    for spec in (compose, override):
        allowed = [h.strip() for h in service_env(spec["services"]["mlflow"])["MLFLOW_SERVER_ALLOWED_HOSTS"].split(",")]
        for host in ("mlflow:5000", "localhost:5500", "127.0.0.1:5500"):
            assert is_allowed_host_header(allowed, host), host
        assert not is_allowed_host_header(allowed, "evil.example:5000")
    # Without the setting MLflow would answer Airflow's calls with 403 (only /health is exempt).
    assert not is_allowed_host_header(get_default_allowed_hosts(), "mlflow:5000")


def test_connection_ids_the_code_uses_are_defined(airflow_settings, compose):
    from include.llm.connection import LLM_CONN_ID
    from include.settings import IBKR_CONN_ID, MARKET_DB_CONN_ID, MLFLOW_CONN_ID

    defaults = set()
    for folder in CODE_DIRS[:3]:
        for path in (REPO / folder).rglob("*.py"):
            defaults |= set(re.findall(r"""conn_id(?::\s*str)?\s*=\s*["']([a-z0-9_]+)["']""", path.read_text()))
    used = {IBKR_CONN_ID, MARKET_DB_CONN_ID, MLFLOW_CONN_ID, LLM_CONN_ID} | defaults
    defined = {c["conn_id"] for c in airflow_settings["connections"]}
    assert used <= defined, used - defined
    env_defined = {
        k.removeprefix("AIRFLOW_CONN_").lower()
        for k in service_env(compose["services"]["airflow-worker"])
        if k.startswith("AIRFLOW_CONN_")
    }
    assert env_defined <= defined, "an env connection must also have its airflow_settings.yaml entry (for astro)"


def test_connections_resolve_through_the_project_code(airflow_settings, compose):
    """Real Airflow Connection parsing of both layouts, read back by the functions the tasks use."""
    from airflow.models.connection import Connection

    from include.dbt_project import dbt_env
    from include.llm.connection import endpoint_from_connection
    from include.settings import _mlflow_uri_from_connection, gateway_url_from_connection, normalize_pg_url

    init = _load_script("airflow_init")
    from_yaml = {kw["conn_id"]: Connection(**kw) for kw in init.connection_specs(SETTINGS)}
    env = service_env(compose["services"]["airflow-worker"])

    url, extra = gateway_url_from_connection(from_yaml["ibkr_default"])
    assert url == env["IBKR_GATEWAY_URL"] == "http://ibkr-gateway:5055/v1/api"
    assert extra["verify_ssl"] is False
    assert _mlflow_uri_from_connection(from_yaml["mlflow_default"]) == env["MLFLOW_TRACKING_URI"]
    llm = endpoint_from_connection(from_yaml["llm_default"])
    assert llm.base_url.endswith("/v1") and llm.model
    for conn in (from_yaml["market_db"], Connection(conn_id="market_db", uri=env["AIRFLOW_CONN_MARKET_DB"])):
        assert conn.conn_type == "postgres" and conn.schema == "market" and conn.host == "market-db"
        assert dbt_env(normalize_pg_url(conn.get_uri()))["DBT_DBNAME"] == "market"
    mlflow_env = Connection.from_json(env["AIRFLOW_CONN_MLFLOW_DEFAULT"], conn_id="mlflow_default")
    assert _mlflow_uri_from_connection(mlflow_env) == env["MLFLOW_TRACKING_URI"]


def test_pools_used_by_dags_exist(airflow_settings):
    used = set()
    for folder in ("dags", "include"):
        for path in (REPO / folder).rglob("*.py"):
            used |= set(re.findall(r"""\bpool\s*=\s*["']([A-Za-z0-9_]+)["']""", path.read_text()))
    assert used, "no pool usage found: the scan is broken"
    defined = {p["pool_name"]: p["pool_slot"] for p in airflow_settings["pools"]}
    assert used <= set(defined), used - set(defined)
    assert all(int(slots) >= 1 for slots in defined.values())


def test_requirement_pins_equal_the_lock():
    def pins(path: Path) -> dict[str, str]:
        out = {}
        for line in path.read_text().splitlines():
            m = re.match(r"^\s*([A-Za-z0-9][A-Za-z0-9._-]*)\s*==\s*([^\s#;]+)", line)
            if m:
                out[re.sub(r"[-_.]+", "-", m.group(1)).lower()] = m.group(2)
        return out

    lock = pins(REPO / "constraints.txt")
    for name in ("requirements.txt", "requirements-dev.txt"):
        for dist, version in pins(REPO / name).items():
            assert lock.get(dist) == version, f"{name}: {dist}=={version}, constraints.txt {lock.get(dist)}"
    req = (REPO / "requirements.txt").read_text()
    assert not re.search(r"^apache-airflow==", req, re.M), "the Astro runtime provides Airflow itself"


def test_astro_dockerfile():
    text = (REPO / "Dockerfile").read_text()
    assert re.search(r"^FROM astrocrpublic\.azurecr\.io/runtime:3\.3-\d+-python-3\.11$", text, re.M)
    assert "pip install --no-cache-dir -r requirements.txt -c /tmp/constraints-runtime.txt" in text
    assert "runtime_constraints.py constraints.txt" in text and "runtime_constraints.py --check" in text
    assert "ensure_manifest(force=True)" in text
    runs = " ".join(re.findall(r"^RUN .*(?:\\\n.*)*", text, re.M))
    assert "dbt deps" not in runs and "ensure_manifest(force=True)" in runs


def test_compose_dockerfile():
    text = (REPO / "docker" / "airflow.Dockerfile").read_text()
    assert re.search(r"^FROM apache/airflow:3\.3\.2-python3\.11$", text, re.M)
    assert "-r /opt/airflow/requirements.txt -c /opt/airflow/constraints.txt" in text and "pip check" in text
    assert "ensure_manifest(force=True)" in text
    for source in re.findall(r"^COPY --chown=\S+ (.+) \S+$", text, re.M):
        for path in source.split():
            assert (REPO / path).exists(), path
            assert not dockerignored(path), f"{path} is excluded by .dockerignore"


def dockerignored(path: str) -> bool:
    ignored = False
    for raw in (REPO / ".dockerignore").read_text().splitlines():
        pattern = raw.strip()
        if not pattern or pattern.startswith("#"):
            continue
        negate = pattern.startswith("!")
        pattern = pattern.lstrip("!").rstrip("/")
        parts = Path(path).parts
        prefixes = ["/".join(parts[: i + 1]) for i in range(len(parts))]
        globbed = [pattern, pattern.replace("**/", "")]
        if any(fnmatch.fnmatch(p, g) for p in prefixes for g in globbed):
            ignored = not negate
    return ignored


def test_dockerignore_keeps_local_state_out_and_sources_in():
    for path in (
        ".venv/bin/python",
        ".local/pgdata",
        ".git/HEAD",
        ".env",
        "dbt/ibkr_market/target/manifest.json",
        "include/__pycache__/x.pyc",
        ".pytest_cache/v",
        "airflow_settings.yaml",
    ):
        assert dockerignored(path), path
    for path in (
        "include/settings.py",
        "dags/market_data_models.py",
        "dbt/ibkr_market/models",
        "requirements.txt",
        "constraints.txt",
        "packages.txt",
        "docker/runtime_constraints.py",
        ".env.example",
    ):
        assert not dockerignored(path), path


def test_runtime_constraints_keep_the_runtimes_airflow():
    rc = _load_script("runtime_constraints")
    lock = (REPO / "constraints.txt").read_text()
    runtime = {
        "apache-airflow": "3.3.1+astro.2",
        "apache-airflow-core": "3.3.1+astro.2",
        "apache-airflow-task-sdk": "1.3.1",
    }
    out = rc.runtime_constraints(lock, runtime)
    assert "apache-airflow==3.3.1+astro.2" in out.splitlines()
    assert "apache-airflow==3.3.2" not in out.splitlines()
    assert len([line for line in out.splitlines() if line.startswith("apache-airflow==")]) == 1
    assert "dbt-core==1.11.16" in out.splitlines()  # every other pin kept
    assert rc.check(out, runtime) == []
    assert rc.check(out, {**runtime, "apache-airflow-core": "3.3.2"}) == [
        "apache-airflow-core: pinned 3.3.1+astro.2, installed 3.3.2"
    ]
    # In this venv (Airflow 3.3.2 from the lock) the script pins what is installed.
    assert f"apache-airflow=={metadata.version('apache-airflow')}" in rc.runtime_constraints(
        lock, rc.installed_airflow()
    )


def test_airflow_init_creates_missing_connections_only(airflow_db, tmp_path):
    from airflow.models.connection import Connection
    from airflow.utils.session import create_session
    from sqlalchemy import delete, select

    from include.settings import gateway_url_from_connection

    init = _load_script("airflow_init")
    tag = uuid.uuid4().hex[:8]
    ids = [f"deploy_{tag}_{n}" for n in ("gw", "db", "edited")]
    settings = tmp_path / "airflow_settings.yaml"
    settings.write_text(f"""
airflow:
  connections:
    - {{conn_id: {ids[0]}, conn_type: http, conn_host: ibkr-gateway, conn_schema: http, conn_port: 5055,
       conn_extra: {{base_path: /v1/api, verify_ssl: false}}}}
    - {{conn_id: {ids[1]}, conn_type: postgres, conn_host: market-db, conn_schema: market, conn_login: market,
       conn_password: market, conn_port: 5432}}
    - {{conn_id: {ids[2]}, conn_type: http, conn_host: from-yaml}}
""")
    try:
        with create_session() as session:
            session.add(Connection(conn_id=ids[2], conn_type="http", host="edited-in-ui"))
        env = {f"AIRFLOW_CONN_{ids[1].upper()}": "postgresql://u:p@elsewhere/market"}
        assert init.apply_connections(settings, env) == [ids[0]]
        assert init.apply_connections(settings, env) == []  # idempotent
        with create_session() as session:
            rows = {c.conn_id: c for c in session.scalars(select(Connection).where(Connection.conn_id.in_(ids)))}
            assert set(rows) == {ids[0], ids[2]}
            assert rows[ids[2]].host == "edited-in-ui"
            assert gateway_url_from_connection(rows[ids[0]])[0] == "http://ibkr-gateway:5055/v1/api"
    finally:
        with create_session() as session:
            session.execute(delete(Connection).where(Connection.conn_id.in_(ids)))


def test_admin_password_file_is_what_the_simple_auth_manager_reads(tmp_path):
    from airflow.api_fastapi.auth.managers.simple.simple_auth_manager import SimpleAuthManager

    init = _load_script("airflow_init")
    path = tmp_path / "auth" / "passwords.json"
    path.parent.mkdir()
    path.write_text(json.dumps({"viewer": "v-pass"}))
    init.write_passwords(path, "admin", "s3cret")
    init.write_passwords(path, "admin", "rotated")
    with open(path, "r+") as stream:
        assert SimpleAuthManager._get_passwords(stream) == {"viewer": "v-pass", "admin": "rotated"}
    assert path.stat().st_mode & 0o077 == 0
    with pytest.raises(SystemExit, match="AIRFLOW_ADMIN_PASSWORD"):
        init.write_passwords(path, "admin", "")


def test_dbt_parse_needs_no_database(tmp_path):
    """The image's build step: dbt parse with the DBT_* defaults of profiles.yml and no server anywhere."""
    import shutil

    project = tmp_path / "ibkr_market"
    shutil.copytree(REPO / "dbt" / "ibkr_market", project, ignore=shutil.ignore_patterns("target", "logs"))
    code = (
        "from dbt.cli.main import dbtRunner; import sys; "
        f"r = dbtRunner().invoke(['parse', '--project-dir', {str(project)!r}, '--profiles-dir', {str(project)!r}, "
        "'--quiet']); sys.exit(0 if r.success else 1)"
    )
    env = {
        "PATH": "/usr/bin:/bin",
        "HOME": str(tmp_path),
        "DBT_SEND_ANONYMOUS_USAGE_STATS": "false",
        "DBT_HOST": "127.0.0.1",
        "DBT_PORT": "9",
    }  # discard port: any connection attempt would fail
    result = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
    manifest = json.loads((project / "target" / "manifest.json").read_text())
    assert any(key.startswith("model.ibkr_market.fct_daily_indicators") for key in manifest["nodes"])


def _install_closure(dockerfile: str, context: Path) -> set[str]:
    """Distributions ``pip install`` in ``dockerfile`` puts into the image: the named ones (or those of the
    requirements file it copies from ``context``) and their requirements."""
    installed = re.search(r"pip install [^\n]*", dockerfile.replace("\\\n", " ")).group(0)
    words = [w for w in re.split(r"[\s\\]+", installed)[2:] if w]
    wanted = [w for w in words if not w.startswith("-") and w != "constraints.txt" and not w.endswith(".txt")]
    for copied, target in re.findall(r"^COPY (\S+\.txt) (\S+)$", dockerfile, re.M):
        if target in words:
            wanted += [line.split("==")[0].strip() for line in (context / copied).read_text().splitlines()
                       if line.strip() and not line.startswith("#")]
    closure, todo = set(), list(wanted)
    while todo:
        dist = re.sub(r"[-_.]+", "-", todo.pop()).lower()
        if dist in closure:
            continue
        closure.add(dist)
        for raw in metadata.requires(dist) or []:
            req = Requirement(raw)
            if req.marker is None or req.marker.evaluate({"extra": ""}):
                todo.append(req.name)
    return closure


_SIMULATOR_PROBE = """
import importlib.abc, json, socket, sys, threading, time, urllib.request

class ImageOnly(importlib.abc.MetaPathFinder):  # what the image does not install cannot be imported
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in BLOCKED:
            raise ModuleNotFoundError(f"No module named {name!r} (not in the image)", name=name)

sys.meta_path.insert(0, ImageOnly())
import uvicorn
from sim.ibkr.__main__ import config_from, parse_args
from sim.ibkr.app import create_app
sock = socket.socket(); sock.bind(("127.0.0.1", 0)); port = sock.getsockname()[1]; sock.close()
server = uvicorn.Server(uvicorn.Config(create_app(config_from(parse_args([]))), host="127.0.0.1", port=port,
                                      log_level="warning"))
threading.Thread(target=server.run, daemon=True).start()
while not server.started: time.sleep(0.05)
base = f"http://127.0.0.1:{port}/v1/api"
def call(path, method="GET"):
    with urllib.request.urlopen(urllib.request.Request(base + path, method=method), timeout=10) as r:
        return json.loads(r.read() or b"null")
call("/iserver/auth/status", "POST"); call("/iserver/accounts")
conid = call("/iserver/secdef/search?symbol=TSLA")[0]["conid"]
bars = call(f"/iserver/marketdata/history?conid={conid}&period=1m&bar=1d")["data"]
call(f"/iserver/marketdata/snapshot?conids={conid}")
server.should_exit = True
print(json.dumps({"bars": len(bars), "modules": sorted(m for m in sys.modules if m.startswith(("include", "sim")))}))
"""


def test_simulator_image_has_what_the_simulator_imports(tmp_path):
    """Run the simulator from only the files the Dockerfile copies, with every distribution the image does not
    install made unimportable, and serve real requests (auth, accounts, search, history, snapshot)."""
    import shutil

    context = REPO / "sim"  # the compose build context of the simulator image
    text = (context / "Dockerfile").read_text()
    for src, dest in re.findall(r"^COPY (.+) (\S+/)$", text, re.M):
        for item in src.split():
            target = tmp_path / dest / (item if (context / item).is_file() else "")
            if (context / item).is_dir():
                shutil.copytree(context / item, tmp_path / dest, ignore=shutil.ignore_patterns("__pycache__"))
            else:
                target.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy(context / item, target)
    assert (tmp_path / "sim" / "ibkr" / "app.py").is_file() and (tmp_path / "sim" / "threaded_server.py").is_file()
    closure = _install_closure(text, context)
    blocked = sorted(
        top
        for top, dists in metadata.packages_distributions().items()
        if not {re.sub(r"[-_.]+", "-", d).lower() for d in dists} & closure and top not in sys.stdlib_module_names
    )
    assert "mlflow" in blocked and "uvicorn" not in blocked
    code = f"import sys; sys.path.insert(0, '.'); BLOCKED = set({blocked!r}); exec({_SIMULATOR_PROBE!r})"
    result = subprocess.run([sys.executable, "-I", "-c", code], cwd=tmp_path, capture_output=True, text=True,
                            timeout=120)  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report["bars"] > 0
    assert "sim.ibkr.app" in report["modules"]


def test_simulator_image_holds_nothing_of_the_airflow_project():
    text = (REPO / "sim" / "Dockerfile").read_text()
    assert "include" not in re.sub(r"#.*", "", text)
    for name in ("ibkr-gateway",):
        for compose_file in ("docker-compose.yml", "docker-compose.override.yml"):
            assert "context: ./sim}" in (REPO / compose_file).read_text(), (compose_file, name)
