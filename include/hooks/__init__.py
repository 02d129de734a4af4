"""Airflow hooks: thin adapters from Airflow connections to the project's plain clients."""
