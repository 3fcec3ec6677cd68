"""What refusing repeated JSON keys costs: ``strict_loads`` against ``json.loads``.

PYTHONPATH=src .venv/bin/python bench/strict_json.py
"""

from __future__ import annotations

import json
import timeit

from modelreg.api.bodies import strict_loads


def main() -> None:
    """Print the per-body parse time of a small body and of a 10,000-file manifest."""
    small = json.dumps({"name": "fraud", "description": "x", "tags": {"a": "b"}}).encode()
    files = [
        {"path": f"dir/{i}/model-{i}.bin", "digest": "sha256:" + "ab" * 32, "size": i}
        for i in range(10_000)
    ]
    big = json.dumps({"files": files, "metrics": {f"m{i}": i for i in range(100)}}).encode()
    for label, body, number in (("small body", small, 200_000), ("10k-file manifest", big, 20)):
        plain = min(timeit.repeat(lambda b=body: json.loads(b), number=number, repeat=5)) / number
        strict = (
            min(timeit.repeat(lambda b=body: strict_loads(b), number=number, repeat=5)) / number
        )
        print(
            f"{label} ({len(body)} bytes): json.loads {plain * 1e6:.1f} us, "
            f"strict_loads {strict * 1e6:.1f} us (+{(strict - plain) * 1e6:.1f} us)"
        )


if __name__ == "__main__":
    main()
