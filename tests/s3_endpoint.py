"""moto's S3 server as a real process on loopback, for the S3 blob store's tests.

Real HTTP, real SigV4 signing, boto3's own endpoint and credential resolution: the store under
test cannot tell it from any other S3-compatible service (no in-process mock of boto3).
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import httpx

from server_process import DEADLINE, free_port

MOTO_SERVER = str(Path(sys.executable).parent / "moto_server")

AWS_ENV = {
    "AWS_ACCESS_KEY_ID": "modelreg-test",
    "AWS_SECRET_ACCESS_KEY": "modelreg-test-secret",
    "AWS_DEFAULT_REGION": "us-east-1",
    # Never the developer's own ~/.aws profiles.
    "AWS_CONFIG_FILE": os.devnull,
    "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
}


class MotoServer:
    """``moto_server`` on a free loopback port until ``stop()``."""

    def __init__(self, log: Path) -> None:
        self.log = log
        self.port = 0
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def env(self) -> dict[str, str]:
        """The variables that point boto3 (in this process or a child) at this server."""
        return {**AWS_ENV, "AWS_ENDPOINT_URL": self.url}

    def start(self) -> MotoServer:
        """Start the server (on the port it had before, when restarted) and wait for it."""
        self.port = self.port or free_port()
        with self.log.open("ab") as out:
            self.proc = subprocess.Popen(
                [MOTO_SERVER, "-H", "127.0.0.1", "-p", str(self.port)],
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        deadline = time.monotonic() + DEADLINE
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"moto_server exited:\n{self.log.read_text()}")
            with contextlib.suppress(httpx.HTTPError):
                httpx.get(self.url + "/moto-api/", timeout=5)
                return self
            time.sleep(0.05)
        raise RuntimeError(f"moto_server did not answer:\n{self.log.read_text()}")

    def stop(self) -> None:
        """Stop the server (its data goes with it)."""
        proc, self.proc = self.proc, None
        if proc is not None and proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=30)

    def new_bucket(self, name: str = "") -> str:
        """A fresh, empty bucket (named ``name``, else at random); its name."""
        import boto3

        name = name or f"modelreg-{uuid.uuid4().hex[:16]}"
        client = boto3.session.Session().client(
            "s3",
            endpoint_url=self.url,
            aws_access_key_id=AWS_ENV["AWS_ACCESS_KEY_ID"],
            aws_secret_access_key=AWS_ENV["AWS_SECRET_ACCESS_KEY"],
            region_name=AWS_ENV["AWS_DEFAULT_REGION"],
        )
        client.create_bucket(Bucket=name)
        return name
