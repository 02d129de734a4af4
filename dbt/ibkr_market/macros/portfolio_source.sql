{#
  A portfolio source read with explicit casts, or, while the table does not exist yet (the portfolio monitor
  creates raw.portfolio_* on its first run), an empty relation with the same columns: a `dbt build` of the
  whole project in a database without the monitor's tables must not fail on them.
  columns: list of [name, sql type] pairs, in output order.
#}
{% macro portfolio_source(table_name, columns) -%}
    {%- set src = source('ibkr_portfolio', table_name) -%}
    {%- set exists = true -%}
    {%- if execute -%}
        {%- set exists = adapter.get_relation(database=src.database, schema=src.schema,
                                              identifier=src.identifier) is not none -%}
    {%- endif -%}
    select
    {%- for name, type in columns %}
        {% if exists %}{{ name }}{% else %}null{% endif %}::{{ type }} as {{ name }}{{ "," if not loop.last }}
    {%- endfor %}
    {% if exists %}from {{ src }}{% else %}where false{% endif %}
{%- endmacro %}
