select
    symbol,
    conid,
    session_date,
    open::double precision as open,
    high::double precision as high,
    low::double precision as low,
    close::double precision as close,
    volume::double precision as volume,
    source,
    loaded_at
from {{ source('ibkr', 'daily_bars') }}
