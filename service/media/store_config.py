"""Where media lives and how long (WA_MEDIA_STORE, WA_MEDIA_S3_*, WA_MEDIA_RETENTION, WA_MEDIA_PRUNE_GRACE,
WA_MEDIA_QUOTA_BYTES) as one typed object, read by ``service/media/config.py``."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal

from service.settings_env import SettingsError, number

StoreKind = Literal["file", "postgres", "s3"]
STORE_KINDS: tuple[StoreKind, ...] = ("file", "postgres", "s3")
DEFAULT_RETENTION = 30 * 86400.0  # WA_MEDIA_RETENTION: seconds a message's media is kept once it is done
# WA_MEDIA_PRUNE_GRACE: a blob younger than this is never deleted, referenced or not: longer than any intake takes
# from its commit to its row's (a 2 GB upload to a bucket included).
DEFAULT_GRACE = 6 * 3600.0


@dataclass(frozen=True, slots=True)
class StoreSettings:
    kind: StoreKind = "file"
    retention: float = DEFAULT_RETENTION  # 0: media is never pruned
    grace: float = DEFAULT_GRACE
    quota_bytes: int = 0  # per account; 0: none
    s3_bucket: str = ""
    s3_endpoint_url: str = ""
    s3_region: str = "us-east-1"
    s3_prefix: str = ""
    s3_access_key_id: str = field(default="", repr=False)
    s3_secret_access_key: str = field(default="", repr=False)


def read_store_settings(env: Mapping[str, str]) -> StoreSettings:
    kind = (env.get("WA_MEDIA_STORE") or "file").strip().lower()
    if kind not in STORE_KINDS:
        raise SettingsError(f"WA_MEDIA_STORE must be one of {', '.join(STORE_KINDS)}, got {kind!r}")
    if kind == "postgres" and not env.get("WA_DATABASE_URL", "").strip():
        raise SettingsError("WA_MEDIA_STORE=postgres keeps media in the gateway's PostgreSQL: set WA_DATABASE_URL")
    bucket = env.get("WA_MEDIA_S3_BUCKET", "").strip()
    if kind == "s3" and not bucket:
        raise SettingsError("WA_MEDIA_STORE=s3 needs WA_MEDIA_S3_BUCKET")
    key_id, secret = env.get("WA_MEDIA_S3_ACCESS_KEY_ID", "").strip(), env.get("WA_MEDIA_S3_SECRET_ACCESS_KEY", "")
    if bool(key_id) != bool(secret.strip()):
        raise SettingsError("set both WA_MEDIA_S3_ACCESS_KEY_ID and WA_MEDIA_S3_SECRET_ACCESS_KEY, or neither"
                            " (then the AWS default chain: environment, profile, instance role)")
    endpoint = env.get("WA_MEDIA_S3_ENDPOINT_URL", "").strip()
    if endpoint and not endpoint.startswith(("http://", "https://")):
        raise SettingsError("WA_MEDIA_S3_ENDPOINT_URL must be an http:// or https:// URL")
    return StoreSettings(
        kind=kind,  # narrowed by the check against STORE_KINDS above
        retention=number(env, "WA_MEDIA_RETENTION", DEFAULT_RETENTION),
        grace=number(env, "WA_MEDIA_PRUNE_GRACE", DEFAULT_GRACE, minimum=1),
        quota_bytes=number(env, "WA_MEDIA_QUOTA_BYTES", 0, cast=int),
        s3_bucket=bucket, s3_endpoint_url=endpoint,
        s3_region=env.get("WA_MEDIA_S3_REGION", "").strip() or "us-east-1",
        s3_prefix=env.get("WA_MEDIA_S3_PREFIX", "").strip(),
        s3_access_key_id=key_id, s3_secret_access_key=secret.strip())
