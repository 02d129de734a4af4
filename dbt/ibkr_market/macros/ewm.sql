{#
  Seeded linear recursions (EMA, Wilder smoothing) as window sums, with no per-row function:

      E_t = sum_{i <= t} c_i * r^(t - i)      c_s = seed (an SMA), c_i = k * x_i for i > s, 0 before s

  Rows are grouped in blocks of `ewm_block` rows (blk = rn / ewm_block, anchor a = blk * ewm_block).
  Each contribution is stored anchored at its own block, v_i = c_i * r^(a - i), which stays finite.
  Then  E_t = r^(t - a) * (running sum of v in t's block + r^block * total of v in the previous block),
  the previous block's total being its running sum at its last row (a lag of j + 1 rows).
  Blocks further back weigh less than r^block (< 1e-19 for every decay used), so E_t equals the full
  recursion to machine precision; the running sums are incremental (O(n)), and incremental runs see
  the same blocks, hence the same values as a full refresh.
  Needs columns `symbol`, `rn` (0-based row number per symbol) and `blk`.
#}

{# c_i, the input of a seeded recursion at row rn: 0 before its seed row, the seed (an SMA) at it, k * x
   after it. In incremental runs `carry` (a column holding the recursion's value at row carry_rn, the last
   kept row) replaces everything up to that row: E_t = r^(t - L) E_L + sum_{L < i <= t} k x_i r^(t - i). #}
{% macro ewm_input(x, k, seed_row, seed, carry=none) -%}
case
    {%- if carry %} when rn < carry_rn then 0 when rn = carry_rn then {{ carry }}{% endif %}
    when rn = {{ seed_row }} then {{ seed }} when rn > {{ seed_row }} then {{ k }}::float8 * {{ x }} else 0
end
{%- endmacro %}

{# The per-row powers of a decay r (computed once per row and decay, shared by the recursions with that decay):
   'anchor' r^(a - rn) moves a contribution to the start a of its block, 'value' r^(rn - a) brings the in-block sum
   back to row rn. Constants are cast to float8: a bare 0.846... literal is numeric, and numeric power() is ~100x
   slower. #}
{% macro ewm_factor(r, kind) -%}
power({{ r }}::float8, ({{ 'blk * ' ~ var('ewm_block') ~ ' - rn' if kind == 'anchor' else 'rn - blk * ' ~ var('ewm_block') }})::float8)
{%- endmacro %}

{# Running sum within the block (the `in_block` window) of the contributions c, each anchored at the start of its
   block with the column anchor_<n> (ewm_factor(r, 'anchor') of the recursion's decay n). #}
{% macro ewm_block_sum(c, n) -%}
sum(({{ c }}) * anchor_{{ n }}) over in_block
{%- endmacro %}

{# E_t from the in-block running sum `s` (value_<n> = ewm_factor(r, 'value')): the previous block's total is `s` at
   that block's last row, j + 1 rows back (j = rn - blk * ewm_block), read with lag() over the symbol's rows.
   first_block: the same value for a row of a symbol's first block, which has no previous block (the lag is NULL);
   for use as the argument of a window function (which cannot contain lag()). #}
{% macro ewm_value(s, n, r, first_block=false) -%}
value_{{ n }} * (
    {{ s }} + power({{ r }}::float8, {{ var('ewm_block') }}::float8)
        * {{ '0' if first_block else 'coalesce(lag(' ~ s ~ ', (rn - blk * ' ~ var('ewm_block') ~ ' + 1)::int) over by_symbol, 0)' }}
)
{%- endmacro %}

{# The named windows of the indicator passes, all ordered (blk, rn) within a symbol: the same order as rn, so one
   sort by (symbol, blk, rn) serves every pass, in_block (which also partitions by blk) included. #}
{% macro ewm_windows() -%}
by_symbol as (partition by symbol order by blk, rn rows between unbounded preceding and current row),
in_block as (partition by symbol, blk order by rn rows between unbounded preceding and current row)
{%- endmacro %}

{# Mean of the last n rows (NULL until n rows exist) from a running sum `cum`: (cum_t - cum_{t-n}) / n over the
   `by_symbol` window. O(1) per row, where a moving float8 frame re-adds n values per row (float8 sum has no
   inverse transition in PostgreSQL). #}
{% macro sma(cum, n) -%}
case when rn >= {{ n - 1 }} then ({{ cum }} - coalesce(lag({{ cum }}, {{ n }}) over by_symbol, 0)) / {{ n }} end
{%- endmacro %}

{# Population stddev over the last n rows: float8's moving stddev_pop (numerically stable; n is small). #}
{% macro stddev_pop_n(x, n) -%}
case when rn >= {{ n - 1 }} then
    stddev_pop({{ x }}) over (partition by symbol order by blk, rn rows between {{ n - 1 }} preceding and current row)
end
{%- endmacro %}

{# A recursion's seed is the mean of its inputs at rows first..last, needed at row `last` only. seed_sum() is their
   running sum over `by_symbol` (O(1) per row, no final function; a mean over the whole partition would hold each
   symbol's rows back until its last one); seed() divides it at row `last`. Bit for bit avg(): float8 avg() adds
   the same values in the same order from 0 and divides by their count. #}
{% macro seed_sum(x, first, last) -%}
sum({{ x }}) filter (where rn between {{ first }} and {{ last }}) over by_symbol
{%- endmacro %}

{% macro seed(running_sum, first, last) -%}
{{ running_sum }} / {{ last - first + 1 }}
{%- endmacro %}
