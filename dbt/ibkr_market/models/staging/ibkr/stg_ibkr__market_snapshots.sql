select
    symbol,
    conid,
    captured_at,
    last as last_price,
    last_price_type,
    bid as bid_price,
    ask as ask_price,
    bid_size,
    ask_size,
    volume as day_volume,
    prior_close,
    md_availability,
    source,
    loaded_at
from {{ source('ibkr', 'market_snapshots') }}
