# Astro Runtime 3.3 = Apache Airflow 3.3 on Python 3.11 (like the local .venv), for `astro dev start` and Astro.
# The runtime's ONBUILD steps run first: apt-get install packages.txt, pip install requirements.txt (unconstrained),
# then COPY the project (minus .dockerignore) into /usr/local/airflow, owned by the astro user.
FROM astrocrpublic.azurecr.io/runtime:3.3-2-python-3.11

ARG GIT_SHA=""
# include.* importable everywhere; runs record the image's commit (no .git in the image); no telemetry at runtime;
# the scheduler loop polls every 0.1 s when idle, so a dependent task (a dbt model after its parent) starts sooner;
# a task's supervisor notices its process's exit within 1 s, not 5 s (docs/deployment.md).
ENV PYTHONPATH=/usr/local/airflow \
    GIT_SHA=${GIT_SHA} \
    DBT_SEND_ANONYMOUS_USAGE_STATS=false \
    GX_ANALYTICS_ENABLED=false \
    AIRFLOW__COSMOS__ENABLE_TELEMETRY=False \
    AIRFLOW__SCHEDULER__SCHEDULER_IDLE_SLEEP_TIME=0.1 \
    AIRFLOW__WORKERS__MIN_HEARTBEAT_INTERVAL=1 \
    MLFLOW_DISABLE_TELEMETRY=true \
    DO_NOT_TRACK=true

# Re-align every transitive dependency with the tested lock (constraints.txt) without touching the runtime's own
# Airflow: its installed apache-airflow/-core/-task-sdk versions replace the lock's, and the check fails the build
# if the install moved them anyway.
RUN python docker/runtime_constraints.py constraints.txt /tmp/constraints-runtime.txt \
 && pip install --no-cache-dir -r requirements.txt -c /tmp/constraints-runtime.txt \
 && python docker/runtime_constraints.py --check /tmp/constraints-runtime.txt

# Cosmos renders the dbt DAG from dbt's manifest (LoadMode.DBT_MANIFEST): `dbt parse` at build time, so nothing runs
# `dbt deps`/`parse` at runtime. Parsing reads profiles.yml (env_var defaults) but never connects to a database.
RUN python -c "from include.dbt_project import ensure_manifest; print(ensure_manifest(force=True))"
