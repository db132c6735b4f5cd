"""The media store and intake the app runs with, chosen by the settings (``WA_MEDIA_STORE``).

One place decides which ``MediaStore`` backs the gateway, so that the views, the dispatcher and the inbound
downloads never know whether media lives on this disk or elsewhere. Every store keeps its local copies in
WA_MEDIA_DIR (what the worker reads and writes); ``postgres`` and ``s3`` keep the durable copy elsewhere
(service/media/store_pg.py, store_s3.py; their modules, and their drivers, are imported only when chosen).
"""

from __future__ import annotations

import asyncio
from typing import Any

from service.address_policy import Lookup, system_lookup
from service.media.intake import Intake
from service.media.store import FileStore, MediaStore
from service.settings import Settings
from service.store.db import Database


async def open_media_store(settings: Settings, database: Database) -> MediaStore:
    """The store WA_MEDIA_STORE names, open, after deleting what a crash left half-written in WA_MEDIA_DIR.
    ``database`` is the gateway's: the PostgreSQL store uses its URL (WA_DATABASE_URL), with a pool of its own."""
    del database  # the settings carry the URL; the store's pool is its own (store_pg.py says why)
    local = await asyncio.to_thread(FileStore, settings.media.directory)
    await asyncio.to_thread(local.sweep)
    config = settings.media.store
    if config.kind == "postgres":
        from service.media.store_pg import PostgresStore

        return await PostgresStore(local, settings.database_url).open()
    if config.kind == "s3":
        from service.media.store_s3 import S3Store

        return await S3Store(local, config).open()
    return local


async def close_media_store(store: MediaStore) -> None:
    """Close what a remote store holds open (its pool or client); nothing for the disk store."""
    close: Any = getattr(store, "close", None)
    if close is not None:
        await close()


def open_intake(store: MediaStore, settings: Settings, lookup: Lookup | None = None) -> Intake:
    return Intake(store, settings.media, lookup or system_lookup)
