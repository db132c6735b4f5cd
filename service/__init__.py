"""wa-gateway: the public HTTP API in front of a supervised WhatsApp worker."""

__version__ = "0.1.0"
