"""Market data: Postgres schema, COPY + upsert loaders, the exchange calendar and ingestion steps."""
