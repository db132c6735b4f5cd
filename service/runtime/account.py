"""One account served by this gateway: its worker view and the three parts that run for it."""

from __future__ import annotations

from dataclasses import dataclass

from service.runtime.dispatch import Dispatcher
from service.runtime.downloads import Downloader
from service.runtime.link import AccountLink
from service.runtime.worker_client import AccountWorker
from service.runtime.worker_events import EventConsumer


@dataclass
class Account:
    name: str
    shard: int
    worker: AccountWorker  # the worker's /accounts/<name>/... routes
    link: AccountLink  # the one mirror of its WhatsApp state
    events: EventConsumer  # its durable event hand-over
    dispatcher: Dispatcher  # its outbox
    downloads: Downloader | None = None  # its contacts' media (None without a media store)
