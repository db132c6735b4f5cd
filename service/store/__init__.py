"""The gateway's own durable state: SQL only (no HTTP, no aiohttp imports).

``db.py`` opens the database (WAL, numbered migrations) and runs every statement on one writer
thread with group commit; ``outbox.py`` holds the outbound message queue's queries.
"""
