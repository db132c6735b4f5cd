"""Webhooks: every stored event, signed per the Standard Webhooks specification, delivered at least
once to each configured endpoint, persisted and retried across restarts.

``secret.py`` (standard library only: the launcher and the settings import it) holds the signing
secrets; ``delivery.py`` the scheduler and the per-endpoint workers; ``service/store/webhooks.py``
the SQL. Importing this package imports nothing else.
"""
