"""The media store and intake the app runs with, chosen by the settings (``WA_MEDIA_STORE``).

One place decides which ``MediaStore`` backs the gateway, so that the views, the dispatcher and the inbound
downloads never know whether media lives on this disk or elsewhere.
"""

from __future__ import annotations

import asyncio

from service.address_policy import Lookup, system_lookup
from service.media.intake import Intake
from service.media.store import FileStore, MediaStore
from service.settings import Settings
from service.store.db import Database


async def open_media_store(settings: Settings, database: Database) -> MediaStore:
    """The disk store under WA_MEDIA_DIR, after deleting what a crash left half-written there."""
    del database  # the PostgreSQL store will keep blobs in it
    store = await asyncio.to_thread(FileStore, settings.media.directory)
    await asyncio.to_thread(store.sweep)
    return store


def open_intake(store: MediaStore, settings: Settings, lookup: Lookup | None = None) -> Intake:
    return Intake(store, settings.media, lookup or system_lookup)
