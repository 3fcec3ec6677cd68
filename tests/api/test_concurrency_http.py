"""100 concurrent registrations of one model through `modelreg server --workers 4`.

Real processes, real HTTP, both databases: version numbers must come out exactly 1..100
(no gaps, no duplicates), no request may fail, and the audit chain must still verify.
"""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

import modelreg
from server_process import ServerProcess, run_cli

REGISTRATIONS = 100
THREADS = 16

pytestmark = pytest.mark.slow


def _all_versions(reg: modelreg.Registry, name: str) -> list[int]:
    numbers: list[int] = []
    token: str | None = None
    while True:
        page = reg.list_versions(name, page_size=37, page_token=token)
        numbers += [v.version for v in page]
        token = page.next_page_token
        if not token:
            return numbers


def test_concurrent_registrations_through_four_workers(home: Path, tmp_path: Path) -> None:
    inputs = tmp_path / "inputs"
    inputs.mkdir()
    shared = inputs / "shared.bin"
    shared.write_bytes(b"same bytes in every version" * 1000)
    own = []
    for i in range(REGISTRATIONS):
        path = inputs / f"own-{i}.txt"
        path.write_text(f"registration {i}\n")
        own.append(path)

    server = ServerProcess(home, "--workers", "4")
    server.start()
    try:

        def register(i: int) -> int:
            # Every registration uploads one blob the others also upload (concurrent PUTs of
            # the same digest) and one of its own.
            with modelreg.Registry(server.url) as reg:
                version = reg.register(
                    "fraud", [shared, own[i]], metrics={"i": float(i)}, capture=False
                )
                return version.version

        with ThreadPoolExecutor(THREADS) as pool:
            futures = [pool.submit(register, i) for i in range(REGISTRATIONS)]
            errors = [f.exception() for f in futures if f.exception() is not None]
            assert errors == []
            answered = sorted(f.result() for f in futures)
        assert answered == list(range(1, REGISTRATIONS + 1))

        with modelreg.Registry(server.url) as reg:
            assert sorted(_all_versions(reg, "fraud")) == list(range(1, REGISTRATIONS + 1))
            assert reg.get_model("fraud").latest_version == REGISTRATIONS
            assert reg.verify_audit()["ok"] is True
            metrics = {reg.get_version(f"fraud:{n}").metrics["i"] for n in (1, 50, 100)}
            assert len(metrics) == 3
    finally:
        server.stop()

    # The registry folder (SQLite or the PostgreSQL its modelreg.toml names) verifies too.
    result = run_cli("--registry", str(home), "audit", "verify", "--json")
    assert result.returncode == 0, result.stdout + result.stderr
    report = json.loads(result.stdout)
    assert report["ok"] is True
    # one create-model event at most, and one register event per version
    assert report["events"] >= REGISTRATIONS
