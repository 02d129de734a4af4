"""docker-compose.yml (plain compose, CeleryExecutor) and docker-compose.override.yml (astro dev start), statically:
references resolve, variables have values, ports do not clash, images are pinned, workers scale, healthchecks gate."""

from __future__ import annotations

import re
import shutil
import subprocess

import pytest
import yaml
from deploy_files import (
    ASTRO_HOST_PORTS,
    ASTRO_SERVICES,
    COMPOSE,
    ENV_EXAMPLE,
    OVERRIDE,
    SETTINGS,
    env_file,
    host_ports,
    load,
    variables,
)

AIRFLOW_COMPONENTS = {
    "airflow-apiserver": "api-server",
    "airflow-scheduler": "scheduler",
    "airflow-dag-processor": "dag-processor",
    "airflow-triggerer": "triggerer",
    "airflow-worker": "celery worker",
}
ONE_SHOT = {"airflow-init", "minio-init"}
_PINNED = re.compile(r"^[\w./-]+:(?!latest$)[\w.-]*\d[\w.-]*$")


@pytest.mark.parametrize("path", [COMPOSE, OVERRIDE, SETTINGS], ids=lambda p: p.name)
def test_yaml_parses(path):
    assert isinstance(yaml.safe_load(path.read_text()), dict)


def test_every_variable_has_a_default_or_is_in_env_example(example_env):
    for path in (COMPOSE, OVERRIDE):
        for name, op, _arg in variables(path.read_text()):
            if op in (":-", "-"):
                continue
            assert name in example_env, f"{path.name}: ${{{name}}} has no default and is not in .env.example"
            if op == ":?":
                assert example_env[name], f".env.example must give the required {name} a value"
    # Only what the compose file reads belongs in .env.example (a stale entry misleads).
    used = {name for name, _, _ in variables(COMPOSE.read_text())}
    assert set(load_env_keys()) <= used, set(load_env_keys()) - used


def load_env_keys() -> list[str]:
    return list(env_file(ENV_EXAMPLE))


def test_required_secrets_fail_loudly_without_env():
    with pytest.raises(KeyError, match="AIRFLOW_DB_PASSWORD"):
        load(COMPOSE, {})


@pytest.mark.parametrize("which", ["compose", "override"])
def test_depends_on_and_volumes_resolve(which, compose, override):
    spec = compose if which == "compose" else override
    services = spec["services"]
    known = set(services) | (ASTRO_SERVICES if which == "override" else set())
    named = set(spec.get("volumes") or {})
    for name, svc in services.items():
        if which == "override" and name in ASTRO_SERVICES:
            assert set(svc) <= {"environment", "volumes"}, f"{name}: only extend the Astro CLI's service"
        for dep in svc.get("depends_on") or {}:
            assert dep in known, f"{name} depends on unknown service {dep}"
        for vol in svc.get("volumes") or []:
            source = str(vol).split(":", 1)[0]
            if not source.startswith((".", "/", "~")):
                assert source in named, f"{name}: named volume {source} is not declared"
            elif source.startswith("./"):
                assert (COMPOSE.parent / source).exists(), f"{name}: bind source {source} does not exist"


def test_no_two_services_publish_the_same_host_port(compose, override):
    for spec, taken in ((compose, set()), (override, set(ASTRO_HOST_PORTS))):
        for name, svc in spec["services"].items():
            for port in host_ports(svc):
                assert port not in taken, f"{name}: host port {port} already published"
                taken.add(port)


def test_every_image_is_pinned(compose, override):
    dockerfiles = [COMPOSE.parent / "Dockerfile", *sorted((COMPOSE.parent / "docker").glob("*Dockerfile"))]
    for spec in (compose, override):
        for name, svc in spec["services"].items():
            if name in ASTRO_SERVICES:
                continue
            image = svc.get("image")
            assert image, f"{name}: name the image (built ones too) with a version tag"
            assert _PINNED.match(image), f"{name}: image {image} is not pinned to a version"
            if "build" in svc:
                dockerfiles.append(COMPOSE.parent / svc["build"].get("dockerfile", "Dockerfile"))
    for dockerfile in set(dockerfiles):
        froms = re.findall(r"^FROM\s+(\S+)", dockerfile.read_text(), re.M)
        assert froms, dockerfile
        for image in froms:
            assert _PINNED.match(image), f"{dockerfile.name}: FROM {image} is not pinned"


def test_airflow_runs_celery_with_every_component_from_one_image(compose):
    services = compose["services"]
    images = {services[name]["image"] for name in [*AIRFLOW_COMPONENTS, "airflow-init"]}
    assert len(images) == 1
    for name, command in AIRFLOW_COMPONENTS.items():
        svc = services[name]
        assert svc["command"] == command
        env = svc["environment"]
        assert env["AIRFLOW__CORE__EXECUTOR"] == "CeleryExecutor"
        assert env["AIRFLOW__CELERY__BROKER_URL"].startswith("redis://redis:")
        assert "@airflow-db:" in env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"]
        assert env["AIRFLOW__CORE__EXECUTION_API_SERVER_URL"] == "http://airflow-apiserver:8080/execution/"
        # One JWT secret for all: workers present tokens the API server signed.
        assert (
            env["AIRFLOW__API_AUTH__JWT_SECRET"]
            == services["airflow-apiserver"]["environment"]["AIRFLOW__API_AUTH__JWT_SECRET"]
        )
        assert {"redis", "airflow-db"} <= set(svc["depends_on"])
        assert svc["depends_on"]["airflow-init"] == {"condition": "service_completed_successfully"}
    init = services["airflow-init"]["command"][-1]
    assert "airflow db migrate" in init and "airflow_init.py" in init
    mounts = services["airflow-init"]["volumes"]
    assert "./airflow_settings.yaml:/opt/airflow/airflow_settings.yaml:ro" in mounts


def test_workers_scale(compose):
    for name, svc in compose["services"].items():
        assert "container_name" not in svc, f"{name}: container_name prevents --scale"
    worker = compose["services"]["airflow-worker"]
    assert not worker.get("ports"), "a published port would clash with --scale airflow-worker=N"
    assert "AIRFLOW__CELERY__WORKER_CONCURRENCY" in worker["environment"]


@pytest.mark.parametrize("which", ["compose", "override"])
def test_healthchecks_gate_startup(which, compose, override):
    services = (compose if which == "compose" else override)["services"]
    for name, svc in services.items():
        if name in ASTRO_SERVICES:
            continue
        if name in ONE_SHOT:
            assert svc.get("restart", "no") == "no"
        else:
            assert svc.get("healthcheck", {}).get("test"), f"{name}: needs a healthcheck"
        for dep, cond in (svc.get("depends_on") or {}).items():
            want = "service_completed_successfully" if dep in ONE_SHOT else "service_healthy"
            assert cond == {"condition": want}, f"{name} -> {dep}: {cond}"


def test_astro_override_mounts_dbt_sources_without_hiding_the_manifest(override):
    for name in ("scheduler", "dag-processor", "triggerer"):
        mounts = override["services"][name]["volumes"]
        targets = [m.split(":")[1] for m in mounts]
        assert "/usr/local/airflow/dbt/ibkr_market/models" in targets
        # A mount of dbt/ or dbt/ibkr_market itself would hide the image's target/manifest.json.
        assert not any(
            t.rstrip("/") in ("/usr/local/airflow/dbt", "/usr/local/airflow/dbt/ibkr_market") for t in targets
        ), name
        assert all(m.endswith(":ro") for m in mounts)
        assert override["services"][name]["environment"]["MLFLOW_TRACKING_URI"] == "http://mlflow:5000"


def test_docker_compose_config_when_the_cli_has_compose(tmp_path):
    docker = shutil.which("docker")
    if not docker or subprocess.run([docker, "compose", "version"], capture_output=True).returncode != 0:
        pytest.skip("no `docker compose` plugin here (static checks above only)")
    shutil.copy(ENV_EXAMPLE, tmp_path / ".env")
    # The override alone is not a project (the Astro CLI supplies the Airflow services), so only the plain file.
    result = subprocess.run(
        [docker, "compose", "--env-file", str(tmp_path / ".env"), "-f", str(COMPOSE), "config", "-q"],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr
