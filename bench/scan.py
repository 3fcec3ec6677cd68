"""How much scanning costs: registering non-code files, and scanning big model files.

Not a test: it prints a table. ``python bench/scan.py [--mb 200]``. It registers, in a fresh
embedded registry, 1000 small JSON files (decided from their first bytes: never scanned), then
times the scanner alone on big files of each kind (a joblib with large arrays, a pickle of many
small objects, a PyTorch state dict).
"""

from __future__ import annotations

import argparse
import os
import pickle
import tempfile
import time
from pathlib import Path


def _scan_seconds(path: Path) -> tuple[str, float]:
    from modelreg.services.scanning import HEAD, code_kind, scan_file

    start = time.perf_counter()
    with path.open("rb") as stream:
        kind = code_kind(path.name, stream.read(HEAD)) or "pickle"
        stream.seek(0)
        status = scan_file(path.name, stream, kind).status
    return status, time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--mb", type=int, default=200, help="size of each big file, MB")
    parser.add_argument("--files", type=int, default=1000, help="small non-code files")
    args = parser.parse_args()
    import joblib
    import numpy as np
    import torch

    import modelreg

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        small = root / "small"
        small.mkdir()
        for i in range(args.files):
            (small / f"part-{i:05d}.json").write_text(f'{{"i": {i}}}')
        with modelreg.Registry(root / "registry") as reg:
            start = time.perf_counter()
            version = reg.register("data", small, capture=False)
            seconds = time.perf_counter() - start
        print(f"register {args.files} JSON files: {seconds:.2f} s, scan {version.scan['status']}")

        n = args.mb * 2**20 // 8
        rows = []
        joblib.dump({"w": np.random.default_rng(0).random(n)}, root / "arrays.joblib")
        rows.append(("joblib, one big float64 array", root / "arrays.joblib"))
        objects = [{"k": i, "v": float(i)} for i in range(args.mb * 2**20 // 40)]
        (root / "objects.pkl").write_bytes(pickle.dumps(objects, protocol=4))
        rows.append(("pickle of many small dicts", root / "objects.pkl"))
        net = torch.nn.Sequential(*(torch.nn.Linear(1024, 1024) for _ in range(args.mb // 4)))
        torch.save(net.state_dict(), root / "state.pt")
        rows.append(("torch.save(state_dict)", root / "state.pt"))
        print(f"{'file':32} {'MB':>7} {'status':>8} {'seconds':>8} {'MB/s':>8}")
        for label, path in rows:
            status, seconds = _scan_seconds(path)
            mb = os.path.getsize(path) / 2**20
            print(f"{label:32} {mb:7.0f} {status:>8} {seconds:8.2f} {mb / seconds:8.1f}")


if __name__ == "__main__":
    main()
