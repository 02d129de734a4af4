"""Project code the DAGs use: plain, typed Python importable as ``include.*``."""
