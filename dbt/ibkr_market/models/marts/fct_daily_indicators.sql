{{ config(
    materialized='incremental',
    unique_key=['symbol', 'session_date'],
    incremental_strategy='delete+insert',
    on_schema_change='fail',
    indexes=[{'columns': ['symbol', 'session_date'], 'unique': True}, {'columns': ['loaded_at']}],
    pre_hook="set local jit = {{ 'off' if is_incremental() else 'on' }}; set local jit_optimize_above_cost = -1;
              set local jit_inline_above_cost = -1; set local work_mem = '256MB';
              set local maintenance_work_mem = '256MB'",
) }}
{#
  Settings for this model's transaction only (set local): memory for the sort (~215 MB for 1.26M rows), the window
  tuple stores and the index builds; JIT for full builds without LLVM's inlining and optimization passes (compiling
  at -O3 takes ~1.6 s, more than it saves; plain code generation takes ~0.15 s and saves ~0.8 s of expression
  interpretation), off for incremental runs, where compiling costs more than the run takes.

  One row per symbol and session, TA-Lib conventions (see _marts__models.yml). Two window passes over the rows,
  both ordered (blk, rn) within a symbol (the same order as rn), so one sort serves both: running sums within
  blocks of ewm_block rows (block_sums), then lag() of those sums (windows). Moving sums are differences of running
  sums; recursions are block-anchored running sums (macros/ewm.sql), exact to machine precision; the variance of
  the closes is exact to ~1e-13 of close^2 (stats), the volumes' exactly.

  Incremental runs rebuild each symbol from its earliest new or changed session (restart) onward. The
  recursions restart from the state stored on the last kept row (avg_gain_14 and avg_loss_14 are kept
  for RSI, macd + ema_26 is MACD's fast EMA) and the moving windows read the 199 sessions before the
  restart; a symbol with less history, or whose kept row is missing, is rebuilt from its first session.
#}
{%- set k12, k26, k9, w14 = 2 / 13, 2 / 27, 2 / 10, 1 / 14 -%}
{%- set decay = {'12': 1 - k12, '26': 1 - k26, '14': 1 - w14, '9': 1 - k9} -%}
{%- set sig = macd_signal_coefficients(12, 26, 9) -%}  {# signal = a * fast + b * slow + Y (ewm.sql) #}
{%- set carried = is_incremental() -%}
{%- set lookback = 199 -%}  {# the longest moving window (SMA 200) less one #}
{%- set carry_cols = 'restart_index, carry_rn, carry_ema_12, carry_ema_26, carry_macd_fast, carry_gain, carry_loss, carry_tr, carry_signal' -%}
{#- The running sums per block: (name, summand, decay of a recursion). Volume is split in halves, hi * 2^18 + lo,
    whole for whole shares: the sums of the halves and of their products stay exact in float8 (below 2^53) for
    volumes below 2^36. -#}
{%- set vol_hi, vol_lo = 'floor(volume / 262144)', '(volume - floor(volume / 262144) * 262144)' -%}
{%- set sums = [
    ('close', 'close', none),
    ('close2', 'close * close', none),
    ('vol_hi', vol_hi, none),
    ('vol_lo', vol_lo, none),
    ('vol_hh', vol_hi ~ ' * ' ~ vol_hi, none),
    ('vol_hl', vol_hi ~ ' * ' ~ vol_lo, none),
    ('vol_ll', vol_lo ~ ' * ' ~ vol_lo, none),
    ('ema_12', ewm_contribution('close', decay['12'], '12', k12, 0, 11, carried and 'carry_ema_12'), '12'),
    ('ema_26', ewm_contribution('close', decay['26'], '26', k26, 0, 25, carried and 'carry_ema_26'), '26'),
    ('macd_fast', ewm_contribution('close', decay['12'], '12', k12, 14, 25, carried and 'carry_macd_fast'), '12'),
    ('avg_gain_14', ewm_contribution('greatest(close - prev_close, 0)', decay['14'], '14', w14, 1, 14,
        carried and 'carry_gain'), '14'),
    ('avg_loss_14', ewm_contribution('greatest(prev_close - close, 0)', decay['14'], '14', w14, 1, 14,
        carried and 'carry_loss'), '14'),
    ('atr_14', ewm_contribution('true_range', decay['14'], '14', w14, 1, 14, carried and 'carry_tr'), '14'),
    ('signal_y', ewm_contribution('close', decay['9'], '9', sig.gamma, 0, 33,
        carried and 'carry_signal - (' ~ sig.a ~ ')::float8 * carry_macd_fast - (' ~ sig.b ~ ')::float8 * carry_ema_26',
        seed_weights=signal_seed_weights(12, 26, 9)), '9'),
] -%}
{%- set pos = {} -%}
{%- for name, x, r in sums %}{% do pos.update({name: loop.index}) %}{% endfor -%}
{%- set zeros = "'{" ~ (['0'] * sums | length) | join(',') ~ "}'::float8[]" -%}
{%- set prev = {} -%}  {# the previous block's total of each sum, from the last row of that block #}
{%- set back20 = {} -%}  {# each sum on the row 20 rows back #}
{%- for name, x, r in sums -%}
    {%- do prev.update({name: '(lag(s, (j + 1)::int, ' ~ zeros ~ ') over by_symbol)[' ~ pos[name] ~ ']'}) -%}
    {%- do back20.update({name: '(lag(s, 20, ' ~ zeros ~ ') over by_symbol)[' ~ pos[name] ~ ']'}) -%}
{%- endfor -%}
with
{%- if carried %}
restarts as (
    select symbol, min(session_index) as restart_index
    from {{ ref('int_daily_bars_enriched') }}
    where loaded_at > {{ high_water_mark() }}
    group by symbol
),

states as (
    select
        r.symbol,
        case when k.macd_signal is not null then r.restart_index else 0 end as restart_index,
        case when k.macd_signal is not null then r.restart_index - 1 end as carry_rn,
        k.ema_12 as carry_ema_12,
        k.ema_26 as carry_ema_26,
        k.macd + k.ema_26 as carry_macd_fast,
        k.avg_gain_14 as carry_gain,
        k.avg_loss_14 as carry_loss,
        k.atr_14 as carry_tr,
        k.macd_signal as carry_signal
    from restarts r
    left join {{ ref('int_daily_bars_enriched') }} e
        on e.symbol = r.symbol and e.session_index = r.restart_index - 1 and r.restart_index > {{ lookback }}
    left join {{ this }} k
        on k.symbol = e.symbol and k.session_date = e.session_date
        and k.avg_gain_14 is not null and k.avg_loss_14 is not null and k.atr_14 is not null
),

inputs as (
    select e.*, s.restart_index, s.carry_rn, s.carry_ema_12, s.carry_ema_26, s.carry_macd_fast, s.carry_gain,
        s.carry_loss, s.carry_tr, s.carry_signal
    from states s
    cross join lateral (  -- per symbol, an index range scan of the sessions it needs
        select *
        from {{ ref('int_daily_bars_enriched') }} i
        where i.symbol = s.symbol
            and i.session_index >= case when s.carry_rn is null then 0 else s.restart_index - {{ lookback }} end
        offset 0  -- keeps the subquery from being flattened into a merge join over every session
    ) e
),
{%- endif %}

bars as (
    select
        symbol, rn, blk, close, volume, true_range, prev_close, session_date, loaded_at,
        {{- ' ' ~ carry_cols ~ ',' if carried }}
        {%- for name, r in decay.items() %}
        {{ ewm_anchor(r, name) }}{{ ',' if not loop.last }}
        {%- endfor %}
    from (
        select
            *, session_index as rn, session_index / {{ var('ewm_block') }} as blk,
            session_index % {{ var('ewm_block') }} as j
        from {{ 'inputs' if carried else ref('int_daily_bars_enriched') }}
    ) b
    offset 0  -- each anchor once per row
),

block_sums as (  -- running sums within each block; all of them also in one array, s, as lag() fetches whole rows
    select
        blk, rn, rn - blk * {{ var('ewm_block') }} as j,
        array[
            {%- for name, x, r in sums %}
            sum({{ x }}) over in_block{{ ',' if not loop.last }}
            {%- endfor %}
        ] as s,
        {%- for name, x, r in sums %}
        sum({{ x }}) over in_block as s_{{ name }},
        {%- endfor %}
        {%- for name in decay %}
        anchor_{{ name }},
        {%- endfor %}
        symbol, close, volume, session_date, loaded_at{{ ', restart_index' if carried }}
    from bars
    window in_block as (partition by symbol, blk order by rn rows between unbounded preceding and current row)
),

windows as (  -- four lag() per row: s 20 rows back and on the last row of the previous block, s_close 50 and 200 back
    select
        symbol, session_date, loaded_at, rn, close, volume,{{ ' restart_index,' if carried }}
        {%- for n in [20, 50, 200] %}
        case when rn >= {{ n - 1 }} then {{ moving_sum('s_close', back20['close'] if n == 20
            else 'lag(s_close, ' ~ n ~ ', 0) over by_symbol', prev['close'], n) }} / {{ n }} end as sma_{{ n }},
        {%- endfor %}
        {%- for name in ['close2', 'vol_hi', 'vol_lo', 'vol_hh', 'vol_hl', 'vol_ll'] %}
        {{ moving_sum('s_' ~ name, back20[name], prev[name], 20) }} as m_{{ name }},
        {%- endfor %}
        {%- for name, x, r in sums if r %}
        {{ ewm_value('s_' ~ name, prev[name], decay[r], r) }} as {{ name }}{{ ',' if not loop.last }}
        {%- endfor %}
    from block_sums
    window by_symbol as (partition by symbol order by blk, rn)
),

stats as (
    select
        symbol, session_date, loaded_at, rn, close, sma_20, sma_50, sma_200, ema_12, ema_26, avg_gain_14, avg_loss_14,
        atr_14,{{ ' restart_index,' if carried }}
        macd_fast - ema_26 as macd,
        ({{ sig.a }})::float8 * macd_fast + ({{ sig.b }})::float8 * ema_26 + signal_y as macd_signal,
        -- TA-Lib's population variance of the 20 closes, mean of squares less squared mean. The running sums round
        -- to ~1e-13 of close^2: a variance below 2^-40 of the mean square is a flat window's rounding, 0.
        case when m_close2 / 20 - sma_20 * sma_20 > m_close2 * {{ 2 ** -40 / 20 }}::float8
            then m_close2 / 20 - sma_20 * sma_20 else 0 end as close_var_20,
        -- 20 * (volume - the 20 volumes' mean) and 20^2 * their population variance, each term exact
        20 * volume - (m_vol_hi * 262144 + m_vol_lo) as volume_dev_20,
        68719476736 * (20 * m_vol_hh - m_vol_hi * m_vol_hi) + 524288 * (20 * m_vol_hl - m_vol_hi * m_vol_lo)
            + (20 * m_vol_ll - m_vol_lo * m_vol_lo) as volume_var_400
    from windows
    offset 0  -- each expression once per row
)

select
    symbol,
    session_date,
    close,
    sma_20,
    sma_50,
    sma_200,
    case when rn >= 11 then ema_12 end as ema_12,
    case when rn >= 25 then ema_26 end as ema_26,
    case when rn >= 33 then macd end as macd,
    case when rn >= 33 then macd_signal end as macd_signal,
    case when rn >= 33 then macd - macd_signal end as macd_hist,
    case when rn < 14 then null when avg_gain_14 + avg_loss_14 = 0 then 0
        else 100 * (avg_gain_14 / (avg_gain_14 + avg_loss_14)) end as rsi_14,  -- TA-Lib order: exactly 100 when no losses
    sma_20 + 2 * sqrt(close_var_20) as bb_upper,
    sma_20 as bb_middle,
    sma_20 - 2 * sqrt(close_var_20) as bb_lower,
    case when rn >= 14 then atr_14 end as atr_14,
    case when rn >= 19 and volume_var_400 > 0 then volume_dev_20 / sqrt(volume_var_400) end as volume_zscore_20,
    case when rn >= 14 then avg_gain_14 end as avg_gain_14,
    case when rn >= 14 then avg_loss_14 end as avg_loss_14,
    loaded_at
from stats
{%- if carried %}
where rn >= restart_index
{%- endif %}
