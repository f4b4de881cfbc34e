"""Console sign-in with the JWT issuer (OIDC authorization code + PKCE) against a loopback provider,
in the browser; and the callback's refusals over plain HTTP."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.support import expected_conditions

from ..e2e.admin_client import AdminClient
from ..e2e.gateway import MASTER_KEY, Gateway, running_gateway, write_config
from .conftest import Console, api, console_config, screenshot, wait
from .oidc_idp import LoopbackIdp

CLIENT_ID = "gatecore-console"


@dataclass
class Setup:
    gw: Gateway
    idp: LoopbackIdp


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Setup]:
    workdir = tmp_path_factory.mktemp("oidc")
    with LoopbackIdp(CLIENT_ID, {"sub": "alice", "team": "team-a"}) as idp:
        config = console_config(workdir / "oidc.db")
        config["auth"]["jwt"] = {
            "issuer": idp.url,
            "audience": [CLIENT_ID],
            "jwks_url": idp.url + "/jwks",
            "team_claim": "team",
            "user_claim": None,
            "console": {"client_id": CLIENT_ID},
        }
        path = write_config(config, workdir / "gatecore.yaml")
        with running_gateway(["--config", str(path)], workdir, config=config) as gw:
            AdminClient(gw, MASTER_KEY).ok("POST", "/teams", {"name": "team-a", "models": ["m1"]}, 201)
            yield Setup(gw, idp)


def test_sign_in_with_the_identity_provider(browser: WebDriver, setup: Setup) -> None:
    browser.delete_all_cookies()
    browser.get(setup.gw.base_url + "/ui/")
    browser.find_element(By.LINK_TEXT, "Sign in with your identity provider").click()
    wait(browser).until(expected_conditions.presence_of_element_located((By.CSS_SELECTOR, "form.signout")))
    assert browser.current_url == setup.gw.base_url + "/ui/portal"
    assert "alice" in browser.find_element(By.CSS_SELECTOR, "form.signout").text
    assert len(setup.idp.redeemed) == 1  # the code was redeemed with the PKCE verifier
    # The token's team applies: its models are the ones the portal says the user may use.
    rows = {
        r.find_element(By.TAG_NAME, "code").text: r.text.split()[-1]
        for r in browser.find_elements(By.XPATH, "//table[caption='Models']/tbody/tr")
    }
    assert rows == {"m1": "yes", "m2": "no"}
    screenshot(browser, "oidc-portal")
    # A token session asks for access like a key does.
    status = browser.execute_async_script(
        "const done = arguments[arguments.length - 1];"
        "const token = document.querySelector('meta[name=csrf-token]').content;"
        "fetch('/admin/v1/access-requests', {method: 'POST', headers: {'content-type': 'application/json',"
        "'x-csrf-token': token}, body: JSON.stringify({models: ['m2'], reason: 'sso user'})})"
        ".then(r => done(r.status));"
    )
    assert status == 201


def test_a_callback_that_was_not_started_here_is_refused(setup: Setup) -> None:
    console = Console(setup.gw, setup.gw.stdout_path, {}, {}, {})
    status, page = api(console, "GET", "/ui/oidc/callback?code=abc&state=def")
    assert status == 401 and "not started here" in str(page)
    status, page = api(console, "GET", "/ui/oidc/callback?error=access_denied")
    assert status == 401
    # A forged flow cookie (wrong seal) is refused too.
    forged = "gatecore_oidc=s.n.v.9999999999.00"
    status, page = api(console, "GET", "/ui/oidc/callback?code=abc&state=s", headers={"cookie": forged})
    assert status == 401 and "not started here" in str(page)
