{{ portfolio_source('account_ledger', [
    ['run_key', 'text'], ['snapshot_at', 'timestamptz'], ['account_id', 'text'], ['currency', 'text'],
    ['cash_balance', 'float8'], ['net_liquidation', 'float8'], ['stock_market_value', 'float8'],
    ['unrealized_pnl', 'float8'], ['realized_pnl', 'float8'], ['loaded_at', 'timestamptz'],
]) }}
