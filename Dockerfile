# Astro Runtime 3.3 = Apache Airflow 3.3 (Python 3.11, like the local .venv). The runtime's ONBUILD
# steps install packages.txt and requirements.txt and copy the project into /usr/local/airflow.
FROM astrocrpublic.azurecr.io/runtime:3.3-2-python-3.11

# Cosmos renders the dbt DAG from dbt's manifest (LoadMode.DBT_MANIFEST): build it into the image.
RUN dbt parse --project-dir dbt/ibkr_market --profiles-dir dbt/ibkr_market --quiet
