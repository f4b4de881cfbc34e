"""Fixtures of the console suite: one gateway with two teams and their keys, one headless Chromium.

The browser is Debian's `chromium` driven by its `chromedriver` (.ci/run installs both); nothing is
downloaded at test time. Screenshots go to tests/console/artifacts/ (kept after the run, gitignored).
"""

from __future__ import annotations

import http.client
import json
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from selenium import webdriver
from selenium.common.exceptions import WebDriverException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.support import expected_conditions
from selenium.webdriver.support.ui import WebDriverWait

from ..e2e.admin_client import AdminClient
from ..e2e.gateway import MASTER_KEY, Gateway, running_gateway, write_config
from .ledger_seed import seed_ledger

HERE = Path(__file__).resolve().parent
ARTIFACTS = HERE / "artifacts"
AXE = HERE / "node_modules" / "axe-core" / "axe.min.js"
CHROMIUM, CHROMEDRIVER = "/usr/bin/chromium", "/usr/bin/chromedriver"
SEEDED_ROWS = 100_000


@dataclass
class Console:
    """The gateway and the keys the tests sign in with."""

    gw: Gateway
    db: Path
    keys: dict[str, str]  # role name → secret
    ids: dict[str, str]  # role name → key id
    teams: dict[str, str]  # team name → id

    @property
    def base(self) -> str:
        return self.gw.base_url


def console_config(store: Path) -> dict[str, Any]:
    price = {"input_per_1m": 0.5, "output_per_1m": 1.5}  # m1 only: the portal shows prices it knows
    models: list[dict[str, Any]] = [
        {"name": "m1", "deployments": [{"provider": "echo", "model": "m1", "pricing": price}]},
        {"name": "m2", "deployments": [{"provider": "echo", "model": "m2"}]},
    ]
    return {
        "providers": [{"name": "echo", "kind": "echo"}],
        "models": models,
        "auth": {"master_key": MASTER_KEY, "key_hash_secret": "console-hash-secret-5b1d9e"},
        "store": {"url": f"sqlite:///{store}"},
    }


@pytest.fixture(scope="module")
def console(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Console]:
    workdir = tmp_path_factory.mktemp("console")
    db = workdir / "console.db"
    config = console_config(db)
    path = write_config(config, workdir / "gatecore.yaml")
    with running_gateway(["--config", str(path)], workdir, config=config) as gw:
        admin = AdminClient(gw, MASTER_KEY)
        teams = {name: admin.ok("POST", "/teams", {"name": name}, 201)["id"] for name in ("team-a", "team-b")}
        keys, ids = {"master": MASTER_KEY}, {}
        bodies: dict[str, dict[str, Any]] = {
            "team_admin_a": {"team": "team-a", "role": "team_admin"},
            "viewer_a": {"team": "team-a", "role": "viewer"},
            "dev_a": {"team": "team-a", "models": ["m1"]},
            "dev_b": {"team": "team-b", "models": ["m1"]},
            "team_b_service": {"team": "team-b"},
        }
        for name, body in bodies.items():
            created = admin.ok("POST", "/keys", {"name": name, **body}, 201)
            keys[name], ids[name] = created["key"], created["id"]
        for name, team in (("summarise-a", "team-a"), ("private-b", "team-b")):
            prompt = {
                "name": name,
                "model": "m1",
                "team": team,
                "messages": [{"role": "user", "content": "Summarise {{topic}}"}],
                "variables": {
                    "type": "object",
                    "properties": {"topic": {"type": "string"}},
                    "required": ["topic"],
                },
            }
            admin.ok("POST", "/prompts", prompt, 201)
        seed_ledger(db, SEEDED_ROWS, team=(teams["team-a"], "team-a"))
        yield Console(gw, db, keys, ids, teams)


@pytest.fixture(scope="module")
def browser() -> Iterator[WebDriver]:
    if shutil.which(CHROMIUM) is None or shutil.which(CHROMEDRIVER) is None:
        pytest.fail("tests/console need Debian's chromium and chromium-driver (.ci/run installs them)")
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--window-size=1280,1000",
        "--no-proxy-server",
    ):
        options.add_argument(flag)
    driver = webdriver.Chrome(options=options, service=Service(CHROMEDRIVER))
    driver.set_page_load_timeout(20)
    try:
        yield driver
    finally:
        driver.quit()


def wait(driver: WebDriver, timeout: float = 10.0) -> WebDriverWait[WebDriver]:
    return WebDriverWait(driver, timeout)


def mark_page(driver: WebDriver) -> None:
    """Mark the current document, so `wait_reloaded` can tell when the page has been replaced."""
    driver.execute_script("window.__gatecoreOld = true;")


def wait_reloaded(driver: WebDriver) -> None:
    """Wait until the marked document is replaced by a new, fully loaded one (errors while the
    browser is between the two documents are retried)."""

    def fresh(d: WebDriver) -> bool:
        try:
            return bool(
                d.execute_script("return !window.__gatecoreOld && document.readyState === 'complete';")
            )
        except WebDriverException:
            return False

    wait(driver).until(fresh)


def sign_in(driver: WebDriver, console: Console, who: str) -> None:
    """Sign out whoever is signed in, then sign in with the key of `who`."""
    driver.delete_all_cookies()
    driver.get(console.base + "/ui/")
    driver.find_element(By.ID, "key").send_keys(console.keys[who])
    driver.find_element(By.CSS_SELECTOR, "form.signin button").click()
    wait(driver).until(expected_conditions.presence_of_element_located((By.CSS_SELECTOR, "form.signout")))


def screenshot(driver: WebDriver, name: str) -> Path:
    ARTIFACTS.mkdir(exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    driver.save_screenshot(str(path))
    return path


def axe_violations(driver: WebDriver) -> list[dict[str, Any]]:
    """axe-core's serious and critical violations on the current page."""
    if not AXE.exists():
        pytest.fail("axe-core is missing: run `make console-deps` (tests/console/package.json)")
    driver.execute_script(AXE.read_text())
    result = driver.execute_async_script(
        "const done = arguments[arguments.length - 1];"
        "axe.run(document).then(r => done(r.violations)).catch(e => done([{id: 'axe-error', impact: 'critical', "
        "description: String(e), nodes: []}]));"
    )
    assert isinstance(result, list)
    return [v for v in result if v.get("impact") in ("serious", "critical")]


def api(
    console: Console,
    method: str,
    path: str,
    key: str | None = None,
    body: Any = None,
    headers: dict[str, str] | None = None,
) -> tuple[int, Any]:
    """One plain HTTP call to the gateway: (status, JSON body or text or None)."""
    conn = http.client.HTTPConnection("127.0.0.1", console.gw.port, timeout=20)
    sent = dict(headers or {})
    if key is not None:
        sent["authorization"] = f"Bearer {key}"
    payload = None
    if body is not None:
        payload = body if isinstance(body, bytes) else json.dumps(body).encode()
        sent.setdefault("content-type", "application/json")
    try:
        conn.request(method, path, body=payload, headers=sent)
        response = conn.getresponse()
        data = response.read()
    finally:
        conn.close()
    if not data:
        return response.status, None
    try:
        return response.status, json.loads(data)
    except ValueError:
        return response.status, data.decode(errors="replace")


def chat_status(console: Console, key: str, model: str = "m1") -> int:
    body = {"model": model, "messages": [{"role": "user", "content": "hi"}]}
    return api(console, "POST", "/v1/chat/completions", key, body)[0]
