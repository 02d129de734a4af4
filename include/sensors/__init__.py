"""Airflow sensors that gate trading and ingestion (gateway session, market hours)."""
