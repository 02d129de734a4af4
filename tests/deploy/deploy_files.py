"""Static views of the deployment files: compose files interpolated like ``docker compose`` does."""

from __future__ import annotations

import re
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[2]
COMPOSE = REPO / "docker-compose.yml"
OVERRIDE = REPO / "docker-compose.override.yml"
SETTINGS = REPO / "airflow_settings.yaml"
ENV_EXAMPLE = REPO / ".env.example"
# What `astro dev start` defines for Airflow 3 (astro-cli airflow/include/airflow3/composeyml.go.tmpl).
ASTRO_SERVICES = {"postgres", "db-migration", "scheduler", "dag-processor", "api-server", "triggerer"}
ASTRO_HOST_PORTS = {"8080", "5432"}

# ${VAR}, ${VAR:-default}, ${VAR-default}, ${VAR:?error}, ${VAR?error}; $$ is a literal $.
_VAR = re.compile(r"\$\$|\$\{([A-Za-z_][A-Za-z0-9_]*)(?:(:?[-?])((?:[^{}]|\{[^{}]*\})*))?\}|\$([A-Za-z_][A-Za-z0-9_]*)")


def variables(text: str) -> list[tuple[str, str | None, str | None]]:
    """(name, operator, argument) of every interpolation in ``text`` (``$$`` escapes skipped)."""
    out = []
    for m in _VAR.finditer(text):
        if m.group(0) == "$$":
            continue
        out.append((m.group(1) or m.group(4), m.group(2), m.group(3)))
    return out


def interpolate(text: str, env: dict[str, str]) -> str:
    def sub(m: re.Match) -> str:
        if m.group(0) == "$$":
            return "$"
        name, op, arg = m.group(1) or m.group(4), m.group(2), m.group(3)
        value = env.get(name)
        if (op in (":-", ":?") and not value) or (op in ("-", "?") and value is None):
            if op.endswith("?"):
                raise KeyError(f"{name}: {arg}")
            return interpolate(arg or "", env) if op.endswith("-") else ""
        return value or ""

    return _VAR.sub(sub, text)


def env_file(path: Path) -> dict[str, str]:
    out = {}
    for line in path.read_text().splitlines():
        line = line.strip()
        if line and not line.startswith("#") and "=" in line:
            key, _, value = line.partition("=")
            out[key.strip()] = value.strip()
    return out


def load(path: Path, env: dict[str, str] | None = None) -> dict:
    text = path.read_text()
    return yaml.safe_load(interpolate(text, env) if env is not None else text)


def host_ports(service: dict) -> list[str]:
    """Published host ports of a service (short syntax ``[ip:]host:container``)."""
    out = []
    for entry in service.get("ports") or []:
        parts = str(entry).split(":")
        if len(parts) >= 2:
            out.append(parts[-2])
    return out


def service_env(service: dict) -> dict[str, str]:
    env = service.get("environment") or {}
    if isinstance(env, list):
        env = dict(item.split("=", 1) for item in env)
    return {k: "" if v is None else str(v) for k, v in env.items()}
