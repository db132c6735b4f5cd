"""The gateway's own durable state: SQL only (no HTTP, no aiohttp imports).

``db.py`` opens the database (WAL, numbered migrations) and runs every statement on one writer
thread with group commit; ``pg.py`` does the same on PostgreSQL (``WA_DATABASE_URL``) for the same store
functions and migrations; ``outbox.py`` holds the outbound message queue's queries.
"""
