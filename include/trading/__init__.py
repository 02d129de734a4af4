"""The trading workflow's Airflow-facing steps: run conf, market context, charts and the task bodies that chain
strategies -> risk -> execution and log each run to MLflow. Logic lives in strategies/, risk/ and execution/."""
