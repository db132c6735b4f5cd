"""A throwaway S3 API for tests: moto's standalone server (``moto_server``, from ``moto[server]`` on PyPI), a
subprocess on a free loopback port, working in a temp dir, always stopped and swept afterwards.

Why moto: pure Python and pip-installable with the test extras (no Docker, no JVM, no Node), it answers the S3
REST API over real HTTP (SigV4 signing, multipart uploads, ranged GETs, copy-onto-itself, listing), so the store
under test runs its real client (aiobotocore) unchanged. Its data is in memory: a test owns its bucket.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from tests.helpers.stack import BOUND_PORTS, STARTED_SESSIONS, free_port, listening, sweep_session

ACCESS_KEY_ID = "testing-key-id"
SECRET_ACCESS_KEY = "testing-secret-" + os.urandom(6).hex()
REGION = "us-east-1"


class S3Server:
    def __init__(self) -> None:
        self.port = free_port()
        self.tmp = Path(tempfile.mkdtemp(prefix="wa-s3-"))
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> S3Server:
        program = Path(sys.executable).parent / "moto_server"
        log = open(self.tmp / "moto.log", "ab")
        try:
            self.proc = subprocess.Popen([str(program), "-H", "127.0.0.1", "-p", str(self.port)], cwd=self.tmp,
                                         stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
                                         env={**os.environ, "MOTO_ALLOW_NONEXISTENT_REGION": "true"})
        finally:
            log.close()
        STARTED_SESSIONS.add(self.proc.pid)
        BOUND_PORTS.add(self.port)
        deadline = time.monotonic() + 60
        while not listening(self.port):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"moto_server did not start: {(self.tmp / 'moto.log').read_text()[-2000:]}")
            time.sleep(0.1)
        return self

    def stop(self) -> None:
        try:
            if self.proc is not None and self.proc.poll() is None:
                self.proc.send_signal(signal.SIGTERM)
                try:
                    self.proc.wait(10)
                except subprocess.TimeoutExpired:
                    pass
            if self.proc is not None:
                sweep_session(self.proc.pid)
                self.proc.wait(5)
        finally:
            shutil.rmtree(self.tmp, ignore_errors=True)

    def env(self, bucket: str, prefix: str = "media/") -> dict[str, str]:
        """The gateway's settings for a store in ``bucket`` on this server."""
        return {"WA_MEDIA_STORE": "s3", "WA_MEDIA_S3_BUCKET": bucket, "WA_MEDIA_S3_ENDPOINT_URL": self.url,
                "WA_MEDIA_S3_REGION": REGION, "WA_MEDIA_S3_PREFIX": prefix,
                "WA_MEDIA_S3_ACCESS_KEY_ID": ACCESS_KEY_ID, "WA_MEDIA_S3_SECRET_ACCESS_KEY": SECRET_ACCESS_KEY}

    def create_bucket(self, name: str) -> None:
        import boto3  # moto's own dependency: the test side's plain client

        boto3.client("s3", endpoint_url=self.url, region_name=REGION, aws_access_key_id=ACCESS_KEY_ID,
                     aws_secret_access_key=SECRET_ACCESS_KEY).create_bucket(Bucket=name)
