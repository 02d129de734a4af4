{#
  Seeded linear recursions (EMA, Wilder smoothing) as window sums, with no per-row function:

      E_t = sum_{i <= t} c_i * r^(t - i)      c_s = seed (an SMA), c_i = k * x_i for i > s, 0 before s

  Rows are grouped in blocks of `ewm_block` rows (blk = rn / ewm_block, j = rn - blk * ewm_block). Each
  contribution is stored anchored at the start of its block, v_i = c_i * r^-j (anchor_<decay> = r^-j), which stays
  finite. Then  E_t = r^j * (running sum of v in t's block + r^block * total of v in the previous block).
  Blocks further back weigh less than r^block (< 1e-19 for every decay used), so E_t equals the full
  recursion to machine precision; the running sums are incremental (O(n)), and incremental runs see
  the same blocks, hence the same values as a full refresh.
#}

{# v_i for a recursion with decay r (its anchor column anchor_<name>) and gain k, seeded at row `last` with the mean
   of x over rows first..last: each of those rows adds x / n placed at row `last` (a seed is linear in x, so it needs
   no window of its own; seeds lie in block 0), later rows add k * x. `seed_weights` (a float8[] of weights of x at
   rows 0..last) replaces the mean. In incremental runs `carry` (the recursion's value at row carry_rn, the last kept
   row) replaces everything up to that row: E_t = r^(t - L) E_L + sum_{L < i <= t} k x_i r^(t - i). #}
{% macro ewm_contribution(x, r, name, k, first, last, carry=none, seed_weights=none) -%}
{%- if last >= var('ewm_block') %}{{ exceptions.raise_compiler_error('ewm seeds must lie in the first block') }}{% endif -%}
case
    {%- if carry %} when rn < carry_rn then 0 when rn = carry_rn then ({{ carry }}) * anchor_{{ name }}{% endif %}
    when rn > {{ last }} then {{ k }}::float8 * {{ x }} * anchor_{{ name }}
    {%- if seed_weights %}
    else ({{ seed_weights }})[(rn + 1)::int] * {{ x }}
    {%- else %}
    when rn >= {{ first }} then {{ r ** -last / (last - first + 1) }}::float8 * {{ x }}
    else 0
    {%- endif %}
end
{%- endmacro %}

{# anchor_<name> = r^-j, computed once per row. The constant is cast to float8: a bare 0.846... literal is numeric,
   and numeric power() is ~100x slower. #}
{% macro ewm_anchor(r, name) -%}
power({{ r }}::float8, (-j)::float8) as anchor_{{ name }}
{%- endmacro %}

{# E_t from the in-block running sum `s` and `prev`, the previous block's total (0 for a symbol's first block). #}
{% macro ewm_value(s, prev, r, name) -%}
({{ s }} + {{ r ** var('ewm_block') }}::float8 * {{ prev }}) / anchor_{{ name }}
{%- endmacro %}

{# Sum of a column over the last n rows (n <= ewm_block) from its in-block running sum `cum`, `cum_n` (cum on the row
   n rows back, 0 before the first row) and `prev`, the previous block's total: cum - cum_n, plus, when row t - n lies
   in the previous block, that block's total (its rows after t - n are prev - cum_n). O(1) per row, where a moving
   float8 frame re-adds n values per row (float8 sum has no inverse transition in PostgreSQL). #}
{% macro moving_sum(cum, cum_n, prev, n) -%}
({{ cum }} - {{ cum_n }} + case when j < {{ n }} then {{ prev }} else 0 end)
{%- endmacro %}

{# TA-Lib's MACD signal, an EMA of macd = fast - slow (EMAs of close), without a pass of its own: an EMA of a
   difference of EMAs splits into partial fractions, signal = a * fast + b * slow + Y, with Y a recursion on close
   itself (decay 1 - k_signal, gain `gamma`), one more window sum beside the others. For 12/26/9, a ~ 3.67,
   b ~ -1.47 and Y ~ -2.2 * close: the cancellation costs a few ulps of the price, as macd itself does. #}
{% macro macd_signal_coefficients(fast, slow, signal) -%}
{%- set k_fast, k_slow, k_signal = 2 / (fast + 1), 2 / (slow + 1), 2 / (signal + 1) -%}
{%- set r_fast, r_slow, r_signal = 1 - k_fast, 1 - k_slow, 1 - k_signal -%}
{{- return({
    'a': k_signal * r_fast / (r_fast - r_signal),
    'b': -k_signal * r_slow / (r_slow - r_signal),
    'gamma': k_signal * r_signal * (k_slow / (r_slow - r_signal) - k_fast / (r_fast - r_signal)),
}) -}}
{%- endmacro %}

{# Y's seed at row s = slow + signal - 2 (33), where TA-Lib's signal starts with the mean of macd over its first
   `signal` rows, is K = signal_s - a * fast_s - b * slow_s: a fixed linear combination of closes 0..s, as TA-Lib
   seeds both EMAs at row slow - 1 (25) with the SMA of the closes ending there (slow, resp. fast of them). Its
   weights, times r_signal^-s (placed at row s), as a float8[] literal. An incremental run carries K instead. #}
{% macro signal_seed_weights(fast, slow, signal) -%}
{%- set k_fast, k_slow, k_signal = 2 / (fast + 1), 2 / (slow + 1), 2 / (signal + 1) -%}
{%- set r_fast, r_slow, r_signal = 1 - k_fast, 1 - k_slow, 1 - k_signal -%}
{%- set c = macd_signal_coefficients(fast, slow, signal) -%}
{%- set start, s = slow - 1, slow + signal - 2 -%}  {#- where macd starts, where the signal starts #}
{%- set weights = [] -%}
{%- for m in range(s + 1) -%}
    {%- set w = namespace(fast=0.0, slow=0.0, fast_s=0.0, slow_s=0.0) -%}
    {%- for i in range(start, s + 1) -%}  {#- the weights of close m in fast_i and slow_i #}
        {%- set f = (r_fast ** (i - start) / fast if m > start - fast else 0.0) if m <= start
                    else (k_fast * r_fast ** (i - m) if m <= i else 0.0) -%}
        {%- set l = r_slow ** (i - start) / slow if m <= start else (k_slow * r_slow ** (i - m) if m <= i else 0.0) -%}
        {%- set w.fast = w.fast + f -%}
        {%- set w.slow = w.slow + l -%}
        {%- set w.fast_s = f -%}
        {%- set w.slow_s = l -%}
    {%- endfor -%}
    {%- do weights.append(((w.fast - w.slow) / signal - c['a'] * w.fast_s - c['b'] * w.slow_s) * r_signal ** -s) -%}
{%- endfor -%}
'{{ '{' ~ weights | join(',') ~ '}' }}'::float8[]
{%- endmacro %}
