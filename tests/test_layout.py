"""The production package holds production code only: nothing the Airflow image runs imports the development
stand-ins (``sim/``), and the image's requirements do not carry their web stack."""

from __future__ import annotations

import ast
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PRODUCTION = ("include", "dags", "plugins")


def _imports(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


def test_production_code_never_imports_the_stand_ins():
    offenders = {
        str(path.relative_to(REPO)): sorted(n for n in _imports(path) if n == "sim" or n.startswith("sim."))
        for folder in PRODUCTION for path in (REPO / folder).rglob("*.py")
    }
    assert {p: n for p, n in offenders.items() if n} == {}


def test_the_stand_ins_live_outside_include():
    assert not (REPO / "include" / "ibkr" / "simulator").exists()
    assert (REPO / "sim" / "ibkr" / "__main__.py").is_file() and (REPO / "sim" / "llm_stub.py").is_file()


def test_the_airflow_image_does_not_install_the_simulator_web_stack():
    pins = {line.split("==")[0].strip().lower() for line in (REPO / "requirements.txt").read_text().splitlines()
            if "==" in line and not line.lstrip().startswith("#")}
    assert not pins & {"starlette", "uvicorn", "cryptography"}
    assert "sim/" in (REPO / ".dockerignore").read_text().split()  # not even copied into the Airflow image
    sim_pins = (REPO / "sim" / "requirements.txt").read_text()
    assert all(f"{name}==" in sim_pins for name in ("starlette", "uvicorn", "cryptography"))
