# The Airflow image of the plain `docker compose` stack (docker-compose.yml), for users without the Astro CLI and for
# workers on other machines: the official Apache Airflow 3.3.2 image plus the project's exact pins. constraints.txt
# is the lock of apache-airflow==3.3.2 + requirements*.txt, so pip keeps the image's Airflow and `pip check` proves
# the result consistent. Same project layout as the Astro image, under /opt/airflow.
FROM apache/airflow:3.3.2-python3.11

ARG GIT_SHA=""
ENV PYTHONPATH=/opt/airflow \
    GIT_SHA=${GIT_SHA} \
    DBT_SEND_ANONYMOUS_USAGE_STATS=false \
    GX_ANALYTICS_ENABLED=false \
    AIRFLOW__COSMOS__ENABLE_TELEMETRY=False \
    MLFLOW_DISABLE_TELEMETRY=true \
    DO_NOT_TRACK=true

COPY --chown=airflow:0 requirements.txt constraints.txt /opt/airflow/
RUN pip install --no-cache-dir -r /opt/airflow/requirements.txt -c /opt/airflow/constraints.txt \
 && pip check \
 && python -c "import airflow; assert airflow.__version__ == '3.3.2', airflow.__version__"

COPY --chown=airflow:0 include /opt/airflow/include
COPY --chown=airflow:0 dags /opt/airflow/dags
COPY --chown=airflow:0 plugins /opt/airflow/plugins
COPY --chown=airflow:0 scripts /opt/airflow/scripts
COPY --chown=airflow:0 docker/airflow_init.py /opt/airflow/docker/airflow_init.py
COPY --chown=airflow:0 dbt /opt/airflow/dbt

# Cosmos renders the dbt DAG from dbt's manifest: `dbt parse` at build time (no database needed, nothing at runtime).
RUN python -c "from include.dbt_project import ensure_manifest; print(ensure_manifest(force=True))"

# Mount points of the compose stack's named volumes: a new volume takes this owner (airflow), so the init service
# can write the auth manager's password file and tasks their quality reports.
RUN mkdir -p /opt/airflow/auth /opt/airflow/quality
