{{ portfolio_source('portfolio_positions', [
    ['run_key', 'text'], ['snapshot_at', 'timestamptz'], ['account_id', 'text'], ['conid', 'bigint'],
    ['symbol', 'text'], ['quantity', 'float8'], ['market_price', 'float8'], ['market_value', 'float8'],
    ['avg_cost', 'float8'], ['unrealized_pnl', 'float8'], ['realized_pnl', 'float8'], ['loaded_at', 'timestamptz'],
]) }}
