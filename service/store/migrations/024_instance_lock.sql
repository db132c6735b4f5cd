-- Failover in seconds (issue 28): each instance holds a session-level advisory lock
-- pg_advisory_lock(22337, lock_key) on a connection of its own, and records it here with each heartbeat,
-- only while pg_locks shows it held by lock_pid. A process that dies loses its session and so the lock at
-- once: the others take its accounts without waiting for WA_LEASE_TTL (service/store/leases.py ``dead``).
-- NULL (SQLite, or no lock held): the instance's accounts move only when their leases expire.
-- Portable SQL (SQLite and PostgreSQL).
ALTER TABLE instances ADD COLUMN lock_key INTEGER;
ALTER TABLE instances ADD COLUMN lock_pid INTEGER;
ALTER TABLE instances ADD COLUMN lock_since REAL;
