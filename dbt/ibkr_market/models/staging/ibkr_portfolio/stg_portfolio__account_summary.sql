{{ portfolio_source('account_summary', [
    ['run_key', 'text'], ['snapshot_at', 'timestamptz'], ['account_id', 'text'], ['net_liquidation', 'float8'],
    ['total_cash', 'float8'], ['gross_position_value', 'float8'], ['loaded_at', 'timestamptz'],
]) }}
