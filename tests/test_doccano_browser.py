"""The Doccano annotation UI in headless Chromium: offsets survive the trip through the browser.

Doccano's UI counts UTF-16 code units (grapheme clusters in grapheme mode) where our records count
code points; these tests prove the conversion at the edge both ways with a real browser (Debian's
``chromium`` and ``chromium-driver``, driven by Selenium). How the UI is driven (see DOCCANO.md): log in
through ``/auth``, open the project and click "Start Annotation", find characters on screen with a DOM
Range over the one SVG ``<text>`` node, drag with W3C pointer actions, pick the label from the menu.
Chromium here has no emoji font; positions come from string indices, not glyph shapes.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.actions.action_builder import ActionBuilder
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.support import expected_conditions as EC
from selenium.webdriver.support.ui import WebDriverWait

from annotate import doccano
from annotate.records import Entity, LabelledDoc
from annotate.schema import load_schema

pytestmark = [pytest.mark.browser, pytest.mark.doccano, pytest.mark.slow]

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
CHROME_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
)
WAIT_S = 30
OPEN_ATTEMPTS = 3
OPEN_SETTLE_S = 1.0
PIXEL_TOLERANCE = 1.0  # a character is 4-10 px wide here; a one-character error fails
LINE_INSET = 2.5  # Doccano draws a span's underline half its stroke width (5 px) inside the characters' box
SCHEMA = load_schema()
TEXT = "🇺🇦 Sébastien Lecornu met Rustem Umerov 👋 in Kyiv."

# the DOM Range of [start, end) UTF-16 units of the annotation text, in viewport pixels
RANGE_JS = """
const node = Array.from(document.querySelectorAll('#container svg text')).find(n => n.textContent === arguments[0]);
const range = document.createRange();
range.setStart(node.firstChild, arguments[1]);
range.setEnd(node.firstChild, arguments[2]);
const box = range.getBoundingClientRect();
return [box.left, box.right, box.top, box.bottom];
"""
# the span underlines Doccano draws beside that text node: [left, right, colour]
LINES_JS = """
const node = Array.from(document.querySelectorAll('#container svg text')).find(n => n.textContent === arguments[0]);
return Array.from(node.parentNode.querySelectorAll('line')).map(l => {
  const box = l.getBoundingClientRect(); return [box.left, box.right, l.getAttribute('stroke')]; });
"""


def utf16(text: str, codepoint: int) -> int:
    """A code-point offset as a JavaScript string index (UTF-16 code units)."""
    return len(text[:codepoint].encode("utf-16-le")) // 2


@pytest.fixture(scope="module")
def browser(live_doccano) -> Iterator[webdriver.Chrome]:
    if not (CHROMIUM.is_file() and CHROMEDRIVER.is_file()):
        pytest.skip("chromium and chromium-driver are not installed (apt-get install chromium chromium-driver)")
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for flag in CHROME_FLAGS:
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(str(CHROMEDRIVER)), options=options)
    driver.set_window_size(1400, 1000)
    try:
        driver.get(f"{live_doccano.url}/auth")
        wait = WebDriverWait(driver, WAIT_S)
        wait.until(EC.presence_of_element_located((By.NAME, "username"))).send_keys(live_doccano.admin.username)
        driver.find_element(By.NAME, "password").send_keys(live_doccano.admin.password, Keys.ENTER)
        wait.until(EC.url_contains("/projects"))
        yield driver
    finally:
        driver.quit()


def open_annotation(driver: webdriver.Chrome, url: str, project_id: int, text: str) -> None:
    """Open the project, click "Start Annotation" (loading the annotation URL directly renders nothing)."""
    wait = WebDriverWait(driver, WAIT_S)
    for _ in range(OPEN_ATTEMPTS):
        driver.get(f"{url}/projects/{project_id}")
        button = wait.until(EC.element_to_be_clickable((By.XPATH, "//button[normalize-space()='Start Annotation']")))
        time.sleep(OPEN_SETTLE_S)
        button.click()
        wait.until(EC.url_contains("?page="))
        # clicked before the project (and its type) had loaded, the button goes to .../undefined: try again
        if "/sequence-labeling" in driver.current_url:
            break
    wait.until(lambda d: d.execute_script(
        "return Array.from(document.querySelectorAll('#container svg text')).some(n => n.textContent === arguments[0])", text))


def drag_over(driver: webdriver.Chrome, text: str, start16: int, end16: int) -> None:
    """Select [start16, end16) with a real pointer drag, as an annotator would."""
    left, right, top, bottom = driver.execute_script(RANGE_JS, text, start16, end16)
    y = int((top + bottom) / 2)
    actions = ActionBuilder(driver)
    actions.pointer_action.move_to_location(int(left) + 1, y).pointer_down()
    actions.pointer_action.move_to_location(int((left + right) / 2), y).move_to_location(int(right) - 1, y).pointer_up()
    actions.perform()


def pick_label(driver: webdriver.Chrome, label: str) -> None:
    menu_item = f"//div[contains(@class, 'v-menu__content')]//div[contains(@class, 'v-list-item')][.//*[normalize-space()='{label}']]"
    WebDriverWait(driver, WAIT_S).until(EC.element_to_be_clickable((By.XPATH, menu_item))).click()


def wait_for_spans(conn: doccano.Connection, project_id: int, example_id: int, count: int) -> None:
    deadline = time.monotonic() + WAIT_S
    while len(conn.client.list_spans(project_id, example_id)) < count:
        assert time.monotonic() < deadline, f"the UI saved fewer than {count} span(s)"
        time.sleep(0.3)


def test_doccano_ui_span_after_emoji_comes_back_in_code_points(browser, live_doccano) -> None:
    conn = doccano.connect(live_doccano.url, live_doccano.admin)
    pushed = doccano.push(conn, "ui-draw", [LabelledDoc("flag#0", TEXT, {"article_id": "flag"})], SCHEMA)
    [example_id] = doccano.existing_record_ids(conn, pushed.project).values()
    open_annotation(browser, live_doccano.url, pushed.project.id, TEXT)

    start, end = TEXT.index("Kyiv"), TEXT.index("Kyiv") + len("Kyiv")  # code points 44-48, after the flag and 👋
    drag_over(browser, TEXT, utf16(TEXT, start), utf16(TEXT, end))
    pick_label(browser, "GPE")
    wait_for_spans(conn, pushed.project.id, example_id, 1)

    [doc] = doccano.pull(conn, "ui-draw", SCHEMA).docs
    assert [(e.start, e.end, e.label) for e in doc.entities] == [(44, 48, "GPE")]
    assert TEXT[doc.entities[0].start : doc.entities[0].end] == "Kyiv"
    assert (doc.id, doc.annotator) == ("flag#0", live_doccano.admin.username)


@pytest.mark.parametrize("grapheme_mode", [False, True], ids=["utf16-mode", "grapheme-mode"])
def test_doccano_ui_draws_pushed_spans_over_the_right_words(browser, live_doccano, grapheme_mode: bool) -> None:
    conn = doccano.connect(live_doccano.url, live_doccano.admin)
    words = ["Sébastien Lecornu", "Rustem Umerov", "Kyiv"]
    spans = [(TEXT.index(w), TEXT.index(w) + len(w)) for w in words]
    assert spans == [(3, 20), (25, 38), (44, 48)]
    doc = LabelledDoc("flag#0", TEXT, {}, [Entity(f"e{i}", s, e, "PERSON") for i, (s, e) in enumerate(spans)])
    name = f"ui-show-{'grapheme' if grapheme_mode else 'utf16'}"
    pushed = doccano.push(conn, name, [doc], SCHEMA, grapheme_mode=grapheme_mode)
    assert pushed.project.grapheme_mode is grapheme_mode
    open_annotation(browser, live_doccano.url, pushed.project.id, TEXT)

    lines = browser.execute_script(LINES_JS, TEXT)
    assert len(lines) == len(words)
    for word, (start, end) in zip(words, spans):
        left, right, _, _ = browser.execute_script(RANGE_JS, TEXT, utf16(TEXT, start), utf16(TEXT, end))
        drawn = [
            line for line in lines
            if abs(line[0] - (left + LINE_INSET)) <= PIXEL_TOLERANCE and abs(line[1] - (right - LINE_INSET)) <= PIXEL_TOLERANCE
        ]
        assert drawn, f"no underline spans {word!r} ({left:.1f}-{right:.1f} px); drawn: {lines}"
