-- GET /health proves the store takes writes: one UPSERT of this one row, committed through the same
-- writer (connection, lock, group commit) as every real write (service/store/probe.py).
-- Portable SQL (SQLite and PostgreSQL): times are epoch seconds (REAL / DOUBLE PRECISION).
CREATE TABLE health_probe (
    id INTEGER PRIMARY KEY CHECK (id = 1),  -- one row, ever
    written_at REAL NOT NULL,               -- the last probe that committed
    writes INTEGER NOT NULL                 -- probes committed since the table was made
);
