"""IBKR gateway health: the keepalive check and its record (``ops.gateway_health``), alerts on health flips, and
the gate that keeps trading runs from trading while the gateway session is unhealthy."""
