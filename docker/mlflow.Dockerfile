# MLflow tracking server with the Postgres driver and S3 (MinIO) client it needs.
FROM ghcr.io/mlflow/mlflow:v3.17.2
RUN pip install --no-cache-dir psycopg2-binary==2.9.13 boto3==1.40.0
