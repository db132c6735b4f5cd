"""Reading ``WA_*`` values: numbers, flags and allowlists with one error type, shared by every settings reader.

Kept apart from ``service/settings.py`` so that a part's own settings (``service/media/config.py``) are read by
that part with the same rules and messages, without importing the whole settings object.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import overload

from service import address_policy


class SettingsError(ValueError):
    """A ``WA_*`` variable has a value the gateway cannot run with."""


@overload
def number(env: Mapping[str, str], name: str, default: int, minimum: float = 0, *, cast: type[int],
            maximum: float | None = None) -> int: ...
@overload
def number(env: Mapping[str, str], name: str, default: float, minimum: float = 0, cast: type[float] = float,
            maximum: float | None = None) -> float: ...
def number(env: Mapping[str, str], name: str, default: float, minimum: float = 0,
            cast: Callable[[str], float] = float, maximum: float | None = None) -> float:
    """A number from the environment; ``cast=int`` for whole numbers."""
    raw = env.get(name, "").strip()
    if not raw:
        return default
    try:
        value = cast(raw)
    except ValueError:
        kind = "an integer" if cast is int else "a number"
        raise SettingsError(f"{name} must be {kind}, got {raw!r}") from None
    if value < minimum:
        raise SettingsError(f"{name} must be >= {minimum}, got {value}")
    if maximum is not None and value > maximum:
        raise SettingsError(f"{name} must be <= {maximum}, got {value}")
    return value


_TRUE = frozenset({"1", "true", "yes", "on"})
_FALSE = frozenset({"0", "false", "no", "off"})


def flag(env: Mapping[str, str], name: str, default: bool) -> bool:
    """A yes/no setting: true/false, 1/0, yes/no, on/off (any case); unset or empty is ``default``."""
    raw = env.get(name, "").strip().lower()
    if not raw:
        return default
    if raw in _TRUE:
        return True
    if raw in _FALSE:
        return False
    raise SettingsError(f"{name} must be true or false, got {raw!r}")


def allowlist(env: Mapping[str, str], name: str) -> tuple[str, ...]:
    """WA_WEBHOOK_ALLOW_PRIVATE, WA_MEDIA_FETCH_ALLOW_PRIVATE: networks (CIDRs) and host names a URL given by API
    may reach though internal (service/address_policy.py)."""
    try:
        return address_policy.parse_allowlist(env.get(name))
    except ValueError as exc:
        raise SettingsError(f"{name}: {exc}") from None
