"""Portfolio monitoring: account snapshots into ``raw.*`` (``loaders``), broker-vs-ledger reconciliation rules
(``reconcile``) and their recording, halting and alerting (``reconciliation``), DAG task bodies (``tasks``)."""
