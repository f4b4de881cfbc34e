"""The console in a real browser (headless Chromium): sign in, keys, usage paging, access requests,
team scope, and axe-core's checks on every page (with a screenshot of each kept as an artifact)."""

from __future__ import annotations

import sqlite3
import time
from urllib.parse import quote

import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.support import expected_conditions

from ..e2e.gateway import MASTER_KEY
from .conftest import (
    Console,
    api,
    axe_violations,
    chat_status,
    mark_page,
    screenshot,
    sign_in,
    wait,
    wait_reloaded,
)

PAGES = (
    "",
    "keys",
    "tenants",
    "usage",
    "deployments",
    "runs",
    "audit",
    "access-requests",
    "prompts",
    "cache",
)


def test_sign_in_shows_the_overview_with_the_seeded_ledger(browser: WebDriver, console: Console) -> None:
    browser.delete_all_cookies()
    browser.get(console.base + "/ui/")
    assert browser.find_element(By.TAG_NAME, "h1").text == "Sign in"
    browser.find_element(By.ID, "key").send_keys("gk-not-a-key")
    browser.find_element(By.CSS_SELECTOR, "form.signin button").click()
    assert "Invalid API key" in browser.find_element(By.CSS_SELECTOR, "p.error").text
    sign_in(browser, console, "master")
    assert browser.find_element(By.TAG_NAME, "h1").text == "Overview"
    stats = browser.find_element(By.CSS_SELECTOR, "dl.stats").text
    assert "Requests (24 h)" in stats
    # The chart is drawn on the server from hourly groups: one bar per hour of the last 24.
    assert len(browser.find_elements(By.CSS_SELECTOR, "svg.chart rect")) == 24
    cookie = browser.get_cookie("gatecore_session")
    assert cookie is not None and cookie["httpOnly"] and cookie["sameSite"] == "Strict"


def test_a_new_key_is_shown_once_and_a_revoked_one_is_refused(browser: WebDriver, console: Console) -> None:
    sign_in(browser, console, "master")
    browser.get(console.base + "/ui/keys")
    browser.find_element(By.ID, "f-name").send_keys("browser-made")
    browser.find_element(By.ID, "f-models").send_keys("m1")
    browser.find_element(By.CSS_SELECTOR, "form.api button[type=submit]").click()
    shown = wait(browser).until(
        expected_conditions.visibility_of_element_located((By.CSS_SELECTOR, ".secret output"))
    )
    secret = shown.text
    assert secret.startswith("gk-")
    screenshot(browser, "keys-secret-shown-once")
    assert chat_status(console, secret) == 200
    # Once: the list shows the prefix only, never the secret.
    browser.get(console.base + "/ui/keys")
    assert secret not in browser.page_source
    assert secret[:9] in browser.page_source
    row = next(r for r in browser.find_elements(By.CSS_SELECTOR, "tbody tr") if "browser-made" in r.text)
    # Its limits and models are edited in place (PATCH), and the gateway applies them.
    mark_page(browser)
    row.find_element(By.TAG_NAME, "summary").click()
    row.find_element(By.CSS_SELECTOR, "input[name=rpm]").send_keys("7")
    row.find_element(By.CSS_SELECTOR, "input[name=models]").send_keys("m1, m2")
    row.find_element(By.XPATH, ".//button[text()='Save']").click()
    wait_reloaded(browser)
    key_id = next(
        k["id"]
        for k in api(console, "GET", "/admin/v1/keys", MASTER_KEY)[1]["data"]
        if k["name"] == "browser-made"
    )
    edited = api(console, "GET", f"/admin/v1/keys/{key_id}", MASTER_KEY)[1]
    assert edited["rpm"] == 7 and edited["models"] == ["m1", "m2"]
    assert chat_status(console, secret, "m2") == 200
    browser.get(console.base + "/ui/keys")  # a fresh load, not the reload the edit started
    row = next(r for r in browser.find_elements(By.CSS_SELECTOR, "tbody tr") if "browser-made" in r.text)
    mark_page(browser)
    row.find_element(By.XPATH, ".//button[text()='Revoke']").click()
    browser.switch_to.alert.accept()
    wait_reloaded(browser)
    browser.get(console.base + "/ui/keys")
    row = next(r for r in browser.find_elements(By.CSS_SELECTOR, "tbody tr") if "browser-made" in r.text)
    assert "revoked" in row.text
    assert chat_status(console, secret) == 401


def test_usage_pages_through_the_ledger(browser: WebDriver, console: Console) -> None:
    sign_in(browser, console, "master")
    browser.get(console.base + "/ui/usage?group_by=model")
    groups = browser.find_elements(By.XPATH, "//table[caption[starts-with(., 'Usage by model')]]/tbody/tr")
    assert {g.text.split()[0] for g in groups} >= {"m1", "m2"}
    requests = "//table[caption='Requests, newest first']/tbody/tr"
    first = [r.text for r in browser.find_elements(By.XPATH, requests)]
    assert len(first) == 50
    seen = set(first)
    for _ in range(3):  # each page is the next 50, none seen before, newest first
        browser.find_element(By.CSS_SELECTOR, "a[rel=next]").click()
        page = [r.text for r in browser.find_elements(By.XPATH, requests)]
        assert len(page) == 50 and not seen & set(page)
        seen |= set(page)
    csv = browser.find_element(By.LINK_TEXT, "Export CSV").get_attribute("href")
    assert csv is not None and "format=csv" in csv


def test_an_access_request_is_approved_and_its_key_read_once(browser: WebDriver, console: Console) -> None:
    sign_in(browser, console, "dev_a")
    assert browser.current_url.endswith("/ui/portal")
    assert "Keys" not in browser.find_element(By.TAG_NAME, "nav").text  # the portal only
    catalogue = {
        r.find_element(By.TAG_NAME, "code").text: r.text
        for r in browser.find_elements(By.XPATH, "//table[caption='Models']/tbody/tr")
    }
    assert "$0.50 / $1.50" in catalogue["m1"] and catalogue["m1"].endswith("yes")
    assert catalogue["m2"].endswith("no")
    # The published prompts its team may call, with their OpenAPI documents; not another team's.
    prompts = [
        h.text for h in browser.find_elements(By.XPATH, "//h2[.='Published prompts']/following-sibling::h3")
    ]
    assert prompts == ["summarise-a"]
    assert "/v1/prompts/summarise-a" in browser.page_source and "private-b" not in browser.page_source
    browser.find_element(By.ID, "f-models").send_keys("m2")
    browser.find_element(By.ID, "f-reason").send_keys("the browser test needs m2")
    browser.find_element(By.CSS_SELECTOR, "form.api button[type=submit]").click()
    wait(browser).until(
        lambda d: "pending" in d.find_element(By.XPATH, "//table[caption='Access requests']").text
    )
    screenshot(browser, "portal-request-pending")

    sign_in(browser, console, "team_admin_a")
    browser.get(console.base + "/ui/access-requests")
    row = next(r for r in browser.find_elements(By.CSS_SELECTOR, "tbody tr") if "the browser test" in r.text)
    mark_page(browser)
    row.find_element(By.XPATH, ".//button[text()='Approve']").click()
    wait_reloaded(browser)
    browser.get(console.base + "/ui/access-requests")
    assert "approved" in browser.find_element(By.CSS_SELECTOR, "tbody").text

    sign_in(browser, console, "dev_a")
    buttons = browser.find_elements(By.XPATH, "//button[text()='Show key']")
    buttons[0].click()
    shown = wait(browser).until(
        expected_conditions.visibility_of_element_located((By.CSS_SELECTOR, ".secret output"))
    )
    key = shown.text
    assert key.startswith("gk-")
    assert chat_status(console, key, "m2") == 200
    browser.refresh()
    browser.find_elements(By.XPATH, "//button[text()='Show key']")[0].click()
    again = wait(browser).until(
        expected_conditions.visibility_of_element_located((By.CSS_SELECTOR, ".secret output"))
    )
    assert "Already shown" in again.text and key not in browser.page_source


def test_a_team_admin_sees_its_team_only(browser: WebDriver, console: Console) -> None:
    sign_in(browser, console, "team_admin_a")
    browser.get(console.base + "/ui/keys")
    listed = browser.find_element(By.XPATH, "//table[caption='Keys']").text
    assert "dev_a" in listed and "dev_b" not in listed and "team_b_service" not in listed
    browser.get(console.base + "/ui/audit")  # the audit log names every team's records
    assert "may not read the audit log" in browser.find_element(By.CSS_SELECTOR, "[role=alert]").text
    # The session reaches the admin API with the team_admin's role: another team's key is refused.
    status = browser.execute_async_script(
        "const done = arguments[arguments.length - 1];"
        f"fetch('/admin/v1/keys/{console.ids['dev_b']}').then(r => done(r.status));"
    )
    assert status == 403


@pytest.mark.parametrize("who", ["master", "dev_a"])
def test_every_page_passes_axe(browser: WebDriver, console: Console, who: str) -> None:
    sign_in(browser, console, who)
    pages = PAGES if who == "master" else ("portal",)
    failures = {}
    for name in (*pages, "portal") if who == "master" else pages:
        browser.get(console.base + "/ui/" + name)
        screenshot(browser, f"{who}-{name or 'overview'}")
        found = axe_violations(browser)
        if found:
            failures[name or "overview"] = [(v["id"], v["impact"], len(v["nodes"])) for v in found]
    browser.delete_all_cookies()
    browser.get(console.base + "/ui/")
    screenshot(browser, "sign-in")
    if found := axe_violations(browser):
        failures["sign-in"] = [(v["id"], v["impact"], len(v["nodes"])) for v in found]
    assert not failures


def test_pages_load_only_what_ui_serves(browser: WebDriver, console: Console) -> None:
    sign_in(browser, console, "master")
    browser.get(console.base + "/ui/usage")
    urls = browser.execute_script("return performance.getEntriesByType('resource').map(e => e.name)")
    assert urls and all(u.startswith(console.base + "/ui/") for u in urls)
    status, _ = api(console, "GET", "/ui/assets/nothing.js")
    assert status == 404


def test_guardrail_events_are_counted_from_the_ledger(browser: WebDriver, console: Console) -> None:
    with sqlite3.connect(console.db, timeout=30) as conn:
        conn.execute(
            "UPDATE usage_ledger SET guardrails = 'pii:email:redact=2,jail:injection:block=1' "
            "WHERE id IN ('seed:00000001', 'seed:00000003')"
        )
    sign_in(browser, console, "master")
    browser.get(console.base + "/ui/guardrails")
    rows = [r.text for r in browser.find_elements(By.CSS_SELECTOR, "tbody tr")]
    assert rows == ["pii email redact 4", "jail injection block 2"]


def test_a_prompt_shows_its_labels_versions_figures_and_diff(browser: WebDriver, console: Console) -> None:
    master = console.keys["master"]
    second = {
        "model": "m1",
        "team": "team-a",
        "description": "shorter",
        "messages": [{"role": "user", "content": "Summarise {{topic}} in one line"}],
        "variables": {"type": "object", "properties": {"topic": {"type": "string"}}, "required": ["topic"]},
    }
    status, created = api(console, "POST", "/admin/v1/prompts/summarise-a/versions", master, second)
    assert status == 201, created
    status, _ = api(console, "PUT", "/admin/v1/prompts/summarise-a/labels/staging", master, {"version": 2})
    assert status == 200
    # One published call of the new version, so its row has a figure (the ledger is written in batches).
    call = {"variables": {"topic": "tides"}}
    status, _ = api(console, "POST", "/v1/prompts/summarise-a?label=staging", console.keys["dev_a"], call)
    assert status == 200
    sign_in(browser, console, "master")
    browser.get(console.base + "/ui/prompts")
    browser.find_element(By.LINK_TEXT, "summarise-a").click()
    versions = []
    for _ in range(50):  # until the call's ledger row is in the version's figures
        tables = browser.find_elements(By.TAG_NAME, "table")
        versions = [r.text for r in tables[1].find_elements(By.CSS_SELECTOR, "tbody tr")]
        if versions and versions[0].split()[:1] == ["2"] and " 1 0 " in f" {versions[0]} ":
            break
        time.sleep(0.2)
        browser.refresh()
    labels = browser.find_elements(By.TAG_NAME, "table")[0].text
    assert "staging" in labels and "v2 (1)" in labels
    assert versions[0].startswith("2 shorter") and " 1 0 " in f" {versions[0]} ", versions
    assert versions[1].startswith("1 "), versions
    diff = browser.find_element(By.TAG_NAME, "pre").text
    assert "summarise-a@1" in diff and "+" in diff and "in one line" in diff
    screenshot(browser, "master-prompt")
    assert not axe_violations(browser)
    # A prompt the caller may not see reads as absent, whatever its name.
    browser.get(console.base + "/ui/prompts?name=" + quote("<nope>"))
    assert "No prompt named" in browser.find_element(By.TAG_NAME, "main").text
