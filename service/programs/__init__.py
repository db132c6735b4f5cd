"""The programs besides the HTTP app: the gateway's own entry (``python -m service``), the ``wa-gateway``
launcher and CLI, the watchdog listener, supervisord's view for /health, backup/restore, the data dir lock
and the no-orphans rules. Each is a process entry point or what one needs; nothing imports from here but
other programs."""
