"""Great Expectations data-quality gates as code: raw-bar and mart checks, per-symbol verdicts
(``quality.symbol_verdicts``) and reports; trading reads its session's with ``verdicts.session_verdicts``.
Light to import: great_expectations, pandas and psycopg2 load inside the functions that use them.
"""
