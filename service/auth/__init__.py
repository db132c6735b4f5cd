"""Who may call the API: the admin key(s) (``WA_API_KEY`` or the data dir's key file) and the scoped keys
that see one account."""
