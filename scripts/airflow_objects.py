"""Create the pools and variables of ``airflow_settings.yaml`` in the local metadata DB.

Run inside an environment already pointed at the metadata DB (``devstack.airflow_env``).
"""

from __future__ import annotations

from pathlib import Path

import yaml

SETTINGS_FILE = Path(__file__).resolve().parents[1] / "airflow_settings.yaml"


def apply(path: Path = SETTINGS_FILE) -> None:
    from airflow.models.pool import Pool
    from airflow.models.variable import Variable

    spec = yaml.safe_load(path.read_text())["airflow"]
    for pool in spec.get("pools") or []:
        Pool.create_or_update_pool(
            name=pool["pool_name"],
            slots=int(pool["pool_slot"]),
            description=pool.get("pool_description") or "",
            include_deferred=False,
        )
    for var in spec.get("variables") or []:
        if Variable.get(var["variable_name"], default_var=None) is None:
            Variable.set(var["variable_name"], var["variable_value"])


if __name__ == "__main__":
    apply()
