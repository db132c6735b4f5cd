"""Running several gateways on one PostgreSQL store: the lease keeper (which instance owns which account,
fenced by generation) and the LISTEN/NOTIFY listener that wakes them."""
