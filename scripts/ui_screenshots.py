"""Seed a demo registry, serve it, and screenshot the web UI's pages for docs/ui.md.

Usage::

    python scripts/ui_screenshots.py [--out docs/img] [--dark]

Registers a small, realistic registry (two models, a gated production policy, a pending
request, an approval), starts ``modelreg server`` on it, and saves one PNG per page at
1280×800 with Debian's Chromium (the same browser the tests drive). ``--dark`` also saves the
dark theme (``-dark.png``). Look at them before committing: they are the UI's first impression.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
PAGES = {
    "models": "/",
    "search": "/search?q=metrics.auc+%3E+0.9",
    "model": "/models/fraud_detector",
    "version": "/models/fraud_detector/versions/4",
    "compare": "/models/fraud_detector/compare?v=2&v=3&v=4",
    "history": "/models/fraud_detector/history",
    "promotions": "/promotions",
    "audit": "/audit",
}


def seed(home: Path, work: Path) -> None:
    """Two models with metrics, lineage, a production gate and a request waiting."""
    import modelreg

    os.environ["MODELREG_ACTOR"] = "maria"  # the server's owner too (see main)
    reg = modelreg.Registry(home)
    files = work / "files"
    files.mkdir()
    runs = [
        (0.871, 0.412, {"max_depth": 6, "n_estimators": 200}),
        (0.902, 0.351, {"max_depth": 8, "n_estimators": 300}),
        (0.915, 0.322, {"max_depth": 8, "n_estimators": 500}),
        (0.934, 0.298, {"max_depth": 10, "n_estimators": 500}),
        (0.929, 0.301, {"max_depth": 12, "n_estimators": 800}),
    ]
    for i, (auc, loss, params) in enumerate(runs, start=1):
        model = files / f"v{i}"
        model.mkdir()
        (model / "model.json").write_text(f'{{"trees": {params["n_estimators"]}, "v": {i}}}')
        (model / "features.txt").write_text("amount\nmerchant\ncountry\nhour\n" + "x\n" * i)
        reg.register(
            "fraud_detector",
            model,
            metrics={"auc": auc, "log_loss": loss, "latency_ms": 3.1 + i * 0.4},
            params=params,
            tags={"team": "risk", "framework": "xgboost"},
            description="Card-fraud scorer. Trained on **90 days** of transactions; see the "
            "[runbook](https://wiki.example.com/fraud).",
            datasets=[f"transactions@2026-11-{10 + i}"],
            bump="minor",
            capture=False,
        )
    reg.promote("fraud_detector", 3, to="production", reason="beats v2 on AUC")
    reg.set_alias("fraud_detector", "champion", 3)
    reg.set_alias("fraud_detector", "challenger", 4)
    reg.set_policy_rule(
        "fraud_detector", "production", requires=["metrics.auc >= 0.9"], approvals=1
    )
    # A request that waits for an approver (the owner requested it, so cannot approve it).
    reg.promote("fraud_detector", 4, to="production", reason="AUC +0.019 over v3")
    churn = files / "churn.pkl"
    churn.write_bytes(b"churn model" * 100)
    reg.register("churn", churn, metrics={"auc": 0.81}, tags={"team": "growth"}, capture=False)
    reg.close()


def main() -> int:
    """Seed, serve, screenshot; 1 when Chromium is missing."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--out", default=str(ROOT / "docs" / "img"))
    parser.add_argument("--dark", action="store_true", help="also save the dark theme")
    args = parser.parse_args()
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        print("Chromium is not installed (Debian: apt-get install chromium)", file=sys.stderr)
        return 1
    from playwright.sync_api import sync_playwright

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        home = work / "registry"
        home.mkdir()
        seed(home, work)
        port = 8765
        server = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "modelreg.cli.main",
                "--registry",
                str(home),
                "server",
                "--port",
                str(port),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            env={**os.environ, "MODELREG_ACTOR": "maria"},
        )
        try:
            base = f"http://127.0.0.1:{port}"
            for _ in range(600):
                try:
                    if httpx.get(base + "/readyz").status_code == 200:
                        break
                except httpx.HTTPError:
                    time.sleep(0.1)
            with sync_playwright() as pw:
                browser = pw.chromium.launch(executable_path=chromium, args=["--no-sandbox"])
                schemes = ["light", "dark"] if args.dark else ["light"]
                for scheme in schemes:
                    page = browser.new_page(
                        viewport={"width": 1280, "height": 800}, color_scheme=scheme
                    )
                    for name, path in PAGES.items():
                        page.goto(base + path)
                        suffix = "" if scheme == "light" else "-dark"
                        page.screenshot(path=str(out / f"ui-{name}{suffix}.png"))
                        print(out / f"ui-{name}{suffix}.png")
                    page.close()
                browser.close()
        finally:
            server.terminate()
            server.wait(timeout=60)
    return 0


if __name__ == "__main__":
    sys.exit(main())
