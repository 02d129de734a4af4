-- Runs once when the market-db volume is created: a database for MLflow's backend store.
CREATE DATABASE mlflow;
