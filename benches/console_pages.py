"""The console's page loads with a big store: N ledger rows (default 1,000,000, all in the last 20 h,
so the overview's 24 h window holds every one) and K keys (default 10,000), in headless Chromium.

Starts a gateway on a SQLite file, writes the rows and keys straight into it, signs in, loads the
overview, usage and keys pages R times each and prints the medians of the browser's own timings:
time to first byte, first contentful paint, DOM interactive and load event (ms from navigation
start), and the bytes the page loaded (the document plus every asset, uncompressed); and the load time
of the first visit (the totals read the store's hourly rollup, console/queries.py).

Run: `PYTHONPATH=python .venv/bin/python benches/console_pages.py [N] [K] [R]`.
"""

from __future__ import annotations

import os
import sqlite3
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the repository root, for tests.*

from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from tests.console.conftest import console_config
from tests.console.ledger_seed import seed_ledger
from tests.e2e.gateway import MASTER_KEY, running_gateway, write_config

TIMINGS = """
const nav = performance.getEntriesByType('navigation')[0];
const paint = performance.getEntriesByType('paint').find(e => e.name === 'first-contentful-paint');
const assets = performance.getEntriesByType('resource');
return [nav.responseStart, paint ? paint.startTime : null, nav.domInteractive, nav.loadEventEnd,
        nav.decodedBodySize + assets.reduce((s, e) => s + e.decodedBodySize, 0)];
"""


def seed_keys(db: Path, count: int) -> None:
    now = time.time()
    with sqlite3.connect(db, timeout=30) as conn:
        conn.executemany(
            "INSERT INTO api_keys (id, name, prefix, hash, metadata, tags, created_by, created_at, updated_at) "
            "VALUES (?, ?, ?, ?, '{}', '[]', 'bench', ?, ?)",
            [
                (f"key_bench{i:06d}", f"bench-{i}", "gk-bench0", os.urandom(32).hex(), now, now)
                for i in range(count)
            ],
        )
        conn.execute("UPDATE change_counter SET version = version + 1 WHERE id = 1")


def _median(values: list[float]) -> str:
    return f"{statistics.median(values):.0f}" if values else "-"


def main() -> None:
    rows = int(sys.argv[1]) if len(sys.argv) > 1 else 1_000_000
    keys = int(sys.argv[2]) if len(sys.argv) > 2 else 10_000
    repeats = int(sys.argv[3]) if len(sys.argv) > 3 else 5
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        db = workdir / "bench.db"
        config = console_config(db)
        path = write_config(config, workdir / "gatecore.yaml")
        with running_gateway(["--config", str(path)], workdir, config=config) as gw:
            started = time.monotonic()
            seed_ledger(db, rows, span_s=20 * 3600)
            seed_keys(db, keys)
            print(f"seeded {rows:,} ledger rows and {keys:,} keys in {time.monotonic() - started:.1f} s")
            time.sleep(2)  # the workers' key tables follow the change counter
            options = webdriver.ChromeOptions()
            options.binary_location = "/usr/bin/chromium"
            for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--window-size=1280,1000"):
                options.add_argument(flag)
            driver = webdriver.Chrome(options=options, service=Service("/usr/bin/chromedriver"))
            driver.set_page_load_timeout(60)
            try:
                driver.get(gw.base_url + "/ui/")
                driver.find_element(By.ID, "key").send_keys(MASTER_KEY)
                driver.find_element(By.CSS_SELECTOR, "form.signin button").click()
                for _ in range(100):  # the sign-in's answer sets the session cookie
                    if driver.get_cookies():
                        break
                    time.sleep(0.1)
                else:
                    raise SystemExit("the sign-in set no session cookie")
                print("page       TTFB ms   FCP ms  interactive ms  load ms   bytes  first load ms")
                for name in ("", "usage", "keys"):
                    samples = []
                    for _ in range(repeats):
                        driver.get(f"{gw.base_url}/ui/{name}")
                        samples.append(driver.execute_script(TIMINGS))
                    med = [_median([s[i] for s in samples if s[i] is not None]) for i in range(5)]
                    first = f"{samples[0][3]:.0f}"  # the first load of a fresh browser
                    print(
                        f"{name or 'overview':9} {med[0]:>8} {med[1]:>8} {med[2]:>15} {med[3]:>8} {med[4]:>8} "
                        f"{first:>14}"
                    )
            finally:
                driver.quit()


if __name__ == "__main__":
    main()
