{{ portfolio_source('broker_trades', [
    ['execution_id', 'text'], ['account_id', 'text'], ['symbol', 'text'], ['side', 'text'],
    ['quantity', 'float8'], ['price', 'float8'], ['commission', 'float8'], ['trade_at', 'timestamptz'],
    ['coid', 'text'], ['loaded_at', 'timestamptz'],
]) }}
