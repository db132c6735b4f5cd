"""Webhooks: every stored event, signed per the Standard Webhooks specification, delivered at least
once to each configured endpoint, persisted and retried across restarts.

``secret.py`` (standard library only: the launcher and the settings import it) holds the signing
secrets; ``delivery.py`` is the service (which endpoints exist, their workers, the drain); ``worker.py`` one
endpoint's delivery loop; ``attempt.py`` one signed POST (``signature.py``) to an address the policy allows
(``address.py``); ``schedule.py`` the retries; ``ping.py`` a test delivery now; ``endpoint_names.py`` how an
endpoint is shown; ``service/store/webhooks.py`` the SQL. Importing this package imports nothing else.
"""
