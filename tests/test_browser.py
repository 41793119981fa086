"""The web UI in a real headless Chromium (Debian's chromium + chromium-driver, driven by Selenium):
the journey a person takes (search "gait" in ICD-10-CM, open M62.81 by type-ahead, follow its map
to 97116, check a pair, upload a file of pairs), what is on screen at each step, keyboard
navigation, a hostile display loaded at run time shown as text, and axe-core's accessibility check
with no serious or critical violations on every page.

Without a browser these tests skip, saying how to get one (.ci/run installs it):
    apt-get install -y chromium chromium-driver; pip install selenium; npm install --prefix tests/browser
UI_SCREENSHOTS=DIR saves a screenshot of each main page there (the README's come from it).
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from live_server import LiveServer, running_server

CHROMIUM, CHROMEDRIVER = shutil.which("chromium"), shutil.which("chromedriver")
AXE = Path(__file__).parent / "browser" / "node_modules" / "axe-core" / "axe.min.js"
INSTALL = ("apt-get install -y chromium chromium-driver && .venv/bin/pip install selenium && "
           "npm install --prefix tests/browser")
try:
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.ui import WebDriverWait
except ImportError:  # pragma: no cover - the skip below says how to get it
    webdriver = None

pytestmark = pytest.mark.skipif(webdriver is None or not CHROMIUM or not CHROMEDRIVER or not AXE.exists(),
                                reason=f"no headless browser for the UI tests: {INSTALL}")
TOKEN = "browser-token"
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--window-size=1280,1000"]


@pytest.fixture(scope="module")
def server(tmp_path_factory) -> Iterator[LiveServer]:
    settings = {"FHIR_PLUGIN_ADMIN_TOKEN": TOKEN, "FHIR_PLUGIN_LOAD_DIR": str(tmp_path_factory.mktemp("loaded"))}
    with running_server(settings=settings) as live:
        yield live


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in FLAGS:
        options.add_argument(flag)
    options.add_argument(f"--user-data-dir={tmp_path_factory.mktemp('chromium-profile')}")
    driver = webdriver.Chrome(options=options, service=Service(CHROMEDRIVER))
    driver.set_page_load_timeout(60)
    try:
        yield driver
    finally:
        driver.quit()


def wait(browser, condition, seconds: float = 20):
    return WebDriverWait(browser, seconds).until(condition)


def shot(browser, name: str) -> None:
    directory = os.environ.get("UI_SCREENSHOTS")
    if directory:
        browser.save_screenshot(str(Path(directory) / f"{name}.png"))


def serious_violations(browser) -> list[tuple[str, str, int]]:
    """axe-core's violations of impact serious or critical on the page now shown (rule, impact, nodes)."""
    browser.execute_script(AXE.read_text())
    found = browser.execute_async_script(
        "const done = arguments[arguments.length - 1];"
        "axe.run(document, {resultTypes: ['violations']}).then(r => done(JSON.stringify(r.violations)))"
        ".catch(e => done(JSON.stringify([{id: 'axe-error: ' + e, impact: 'critical', nodes: []}])));")
    return [(v["id"], v["impact"], len(v["nodes"])) for v in json.loads(found)
            if v["impact"] in ("serious", "critical")]


def text_of(browser, css: str) -> str:
    return browser.find_element(By.CSS_SELECTOR, css).text


def test_the_journey(browser, server):
    browser.get(server.url + "/")
    assert browser.current_url == server.url + "/ui/"
    assert text_of(browser, "h1") == "fhir_plugin terminology server"
    shot(browser, "home")
    browser.find_element(By.LINK_TEXT, "International Classification of Diseases, Tenth Revision, Clinical "
                                       "Modification (ICD-10-CM)").click()
    box = wait(browser, ec.presence_of_element_located((By.ID, "q")))
    # search "gait": the form, without waiting for type-ahead
    box.send_keys("gait", Keys.ENTER)
    wait(browser, ec.text_to_be_present_in_element((By.CSS_SELECTOR, "main h2"), "6 matches for “gait”"))
    rows = [r.text for r in browser.find_elements(By.CSS_SELECTOR, "main tbody tr")]
    assert rows[:2] == ["R26 Abnormalities of gait and mobility", "R26.0 Ataxic gait"]
    shot(browser, "search")
    # open M62.81 from the type-ahead suggestions
    box = browser.find_element(By.ID, "q")
    box.clear()
    box.send_keys("M62.81")
    suggestion = wait(browser, ec.element_to_be_clickable((By.CSS_SELECTOR, "#suggestions a")))
    assert suggestion.text == "M62.81 Muscle weakness (generalized)"
    suggestion.click()
    wait(browser, ec.text_to_be_present_in_element((By.TAG_NAME, "h1"), "M62.81 Muscle weakness (generalized)"))
    maps = browser.find_element(By.XPATH, "//h2[text()='Maps']/following-sibling::table[1]").text
    assert "97116 Therapeutic procedure, 1 or more areas, each 15 minutes; gait training" in maps
    assert "The muscles are not as strong as they should be, making walking difficult." in maps
    shot(browser, "concept")
    # follow the map to 97116
    browser.find_element(By.LINK_TEXT, "97116").click()
    wait(browser, ec.text_to_be_present_in_element((By.TAG_NAME, "h1"), "97116 Therapeutic procedure"))
    assert "Operating-room schedule name" in browser.find_element(By.TAG_NAME, "main").text
    # check a pair: the undotted code, then the suggested one
    browser.find_element(By.LINK_TEXT, "Check a pair").click()
    browser.find_element(By.ID, "source").send_keys("97116")
    browser.find_element(By.ID, "target").send_keys("M6281", Keys.ENTER)
    wait(browser, ec.text_to_be_present_in_element((By.CSS_SELECTOR, ".status"), "unknown target"))
    assert text_of(browser, ".suggestion") == "Did you mean M62.81?"
    shot(browser, "check")
    browser.find_element(By.CSS_SELECTOR, ".suggestion a").click()
    wait(browser, ec.text_to_be_present_in_element((By.CSS_SELECTOR, ".status"), "supported"))
    assert browser.find_element(By.ID, "fhir-request").get_attribute("value") == (
        f"{server.url}/r4/ConceptMap/$translate?sourceSystem=http://www.ama-assn.org/go/cpt&sourceCode=97116"
        "&targetSystem=http://hl7.org/fhir/sid/icd-10-cm&targetCode=M62.81")


def test_upload_a_file_of_pairs(browser, server, tmp_path):
    pairs = tmp_path / "pairs.csv"
    pairs.write_text("cpt,icd10cm\n97116,M62.81\n97116,J45.909\n97116,M6281\n97116,NOPE\n")
    browser.get(server.url + "/ui/check-pairs")
    browser.find_element(By.ID, "file").send_keys(str(pairs))
    browser.find_element(By.CSS_SELECTOR, "main form button[type=submit]").click()
    summary = wait(browser, ec.presence_of_element_located((By.ID, "summary")))
    assert summary.text == "4 pairs: 1 supported, 1 not mapped, 0 unknown source, 2 unknown target"
    rows = [r.text for r in browser.find_elements(By.CSS_SELECTOR, "main tbody tr")]
    assert rows[2].startswith("4 97116 M6281 unknown target M62.81 ")
    shot(browser, "pairs")


def test_keyboard_reaches_the_search_and_skips_to_content(browser, server):
    browser.get(server.url + "/ui/CodeSystem/icd-10-cm")
    body = browser.find_element(By.TAG_NAME, "body")
    body.send_keys(Keys.TAB)
    assert browser.switch_to.active_element.text == "Skip to content"
    reached = []
    for _ in range(4):
        browser.switch_to.active_element.send_keys(Keys.TAB)
        reached.append(browser.switch_to.active_element.get_attribute("id") or browser.switch_to.active_element.text)
    assert reached == ["fhir_plugin", "Check a pair", "Check a file of pairs", "q"]
    browser.switch_to.active_element.send_keys("ataxic", Keys.ENTER)
    wait(browser, ec.text_to_be_present_in_element((By.CSS_SELECTOR, "main h2"), "matches for “ataxic”"))


def test_a_hostile_display_is_shown_as_text(browser, server):
    hostile = '<img src=x onerror="document.title=\'pwned\'"><b>bold</b>'
    cs = {"resourceType": "CodeSystem", "id": "hostile", "url": "http://example.org/hostile", "status": "active",
          "content": "complete", "title": "Hostile", "concept": [{"code": "X1", "display": hostile}]}
    loaded = requests.post(f"{server.url}/admin/content", params={"name": "hostile.json"}, data=json.dumps(cs),
                           headers={"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/fhir+json"},
                           timeout=30)
    assert loaded.status_code in (200, 201), loaded.text
    browser.get(server.url + "/ui/CodeSystem/hostile/concept/X1")
    assert text_of(browser, "h1") == f"X1 {hostile}"
    assert browser.title != "pwned"
    assert browser.find_elements(By.CSS_SELECTOR, "main img, main b") == []


@pytest.mark.parametrize("path", ["/ui/", "/ui/CodeSystem/icd-10-cm?q=gait", "/ui/CodeSystem/icd-10-cm/concept/M62.81",
                                  "/ui/CodeSystem/cpt-97116-fragment/concept/97116",
                                  "/ui/ValueSet/icd-10-cm-gait-training-diagnoses",
                                  "/ui/ConceptMap/cpt-97116-to-icd-10-cm", "/ui/check?source=97116&target=M6281",
                                  "/ui/check-pairs", "/ui/CodeSystem/nope"])
def test_no_serious_accessibility_violations(browser, server, path):
    browser.get(server.url + path)
    assert serious_violations(browser) == []


def test_the_accessibility_check_finds_a_serious_violation(browser):
    """The check above can fail: a page with an image without alt text and an unlabelled input."""
    browser.get('data:text/html,<html lang="en"><title>t</title><main><img src="x.png"><input></main></html>')
    found = serious_violations(browser)
    assert ("image-alt", "critical", 1) in found
    assert ("label", "critical", 1) in found
