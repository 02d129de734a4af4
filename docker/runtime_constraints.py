"""Constraints for installing the project into an image that already has Airflow (the Astro Runtime).

``constraints.txt`` is the lock of a clean ``apache-airflow==3.3.2`` + requirements install. In the runtime image,
Airflow itself belongs to the runtime: this writes the lock with the Airflow distributions replaced by the versions
installed in the running interpreter, so ``pip install -r requirements.txt -c <out>`` aligns every other pin with
the lock and cannot move Airflow. ``--check <file>`` verifies afterwards that the installed Airflow still matches.

    python docker/runtime_constraints.py constraints.txt /tmp/constraints.txt
    pip install -r requirements.txt -c /tmp/constraints.txt
    python docker/runtime_constraints.py --check /tmp/constraints.txt
"""

from __future__ import annotations

import re
import sys
from importlib import metadata
from pathlib import Path

AIRFLOW_DISTS = ("apache-airflow", "apache-airflow-core", "apache-airflow-task-sdk")


def _name(line: str) -> str | None:
    match = re.match(r"^\s*([A-Za-z0-9][A-Za-z0-9._-]*)\s*(==|@)", line)
    return re.sub(r"[-_.]+", "-", match.group(1)).lower() if match else None


def installed_airflow() -> dict[str, str]:
    """Versions of the Airflow distributions installed here (those absent are left out)."""
    out = {}
    for dist in AIRFLOW_DISTS:
        try:
            out[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            continue
    return out


def runtime_constraints(lock: str, airflow: dict[str, str]) -> str:
    """The lock without its Airflow pins, plus ``airflow``'s versions; other lines are kept as they are."""
    if "apache-airflow-core" not in airflow and "apache-airflow" not in airflow:
        raise SystemExit("no Airflow installed in this interpreter: this script is for images that ship Airflow")
    kept = [line for line in lock.splitlines() if _name(line) not in AIRFLOW_DISTS]
    return "\n".join([*kept, *(f"{dist}=={version}" for dist, version in sorted(airflow.items()))]) + "\n"


def check(constraints: str, airflow: dict[str, str]) -> list[str]:
    """Airflow pins of ``constraints`` that the installed versions no longer match (empty: unchanged)."""
    pinned = {}
    for line in constraints.splitlines():
        name = _name(line)
        if name in AIRFLOW_DISTS:
            pinned[name] = line.split("==", 1)[1].strip()
    return [
        f"{dist}: pinned {version}, installed {airflow.get(dist)}"
        for dist, version in pinned.items()
        if airflow.get(dist) != version
    ]


def main(argv: list[str]) -> None:
    if argv[:1] == ["--check"] and len(argv) == 2:
        changed = check(Path(argv[1]).read_text(), installed_airflow())
        if changed:
            raise SystemExit("the project's install changed the runtime's Airflow: " + "; ".join(changed))
        print("runtime Airflow unchanged:", ", ".join(f"{d}=={v}" for d, v in installed_airflow().items()))
        return
    if len(argv) != 2:
        raise SystemExit(__doc__)
    Path(argv[1]).write_text(runtime_constraints(Path(argv[0]).read_text(), installed_airflow()))


if __name__ == "__main__":
    main(sys.argv[1:])
