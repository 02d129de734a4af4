"""The ML signal model: features shared by training and serving, time-ordered training, MLflow registry."""
