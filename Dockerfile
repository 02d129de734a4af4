# Astro Runtime 3.3 = Apache Airflow 3.3 (Python 3.11, like the local .venv). The runtime's ONBUILD
# steps install packages.txt and requirements.txt and copy the project into /usr/local/airflow.
FROM astrocrpublic.azurecr.io/runtime:3.3-2-python-3.11
