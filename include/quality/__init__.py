"""Great Expectations data-quality gates as code: checks of raw bars and the indicator mart, per-symbol verdicts
(``quality.symbol_verdicts``) and readable reports. The trading path reads the verdicts of its session with
``verdicts.session_verdicts``.

Light to import: great_expectations, pandas and psycopg2 load inside the functions that use them.
"""
