"""An account's life on the gateway side, below HTTP: the worker client, the hand-over of the worker's
events into the store, each account's link state and dispatcher (outbox -> worker), the governor's limits,
the notifier that wakes readers, and the event log's retention. No aiohttp application state here.
"""
