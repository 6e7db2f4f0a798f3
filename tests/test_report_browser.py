"""The HTML report as a person sees it: opened from disk in headless Chromium (Debian's chromium and
chromium-driver packages, driven by Selenium: tests/browser.py), screenshotted, checked for console errors, for
every image loaded, for numbers that equal the run's files, and for a sample timeline that steps."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

import gankit
from gankit.runs.listing import number

from browser import chromium


@pytest.fixture
def browser(tmp_path):
    with chromium(tmp_path) as driver:
        yield driver


def test_the_report_renders_with_the_runs_numbers_and_a_timeline_that_steps(looked_at_runs, browser, tmp_path):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    finished, crashed = looked_at_runs["finished"], looked_at_runs["crashed"]
    page = gankit.report([finished, crashed, looked_at_runs["translation"]], tmp_path / "report.html")
    browser.get(page.resolve().as_uri())
    assert browser.execute_script("return document.readyState") == "complete"
    assert browser.title == "gankit report: finished, crashed, translation"

    # what a person sees: images decoded, nothing blank, nothing wider than the window, no script error
    assert browser.execute_script(
        "return Array.from(document.images).every(i => i.complete && i.naturalWidth > 0)")
    assert browser.execute_script("return document.images.length") >= 1 + 6 + 4
    assert browser.execute_script("return document.documentElement.scrollWidth <= window.innerWidth")
    shot = tmp_path / "report.png"
    browser.save_screenshot(str(shot))
    pixels = np.asarray(Image.open(shot).convert("L"), dtype=np.float32)
    assert pixels.std() > 20 and 0.03 < (pixels < 200).mean() < 0.6  # text, tables and curves on white
    errors = [e for e in browser.get_log("browser") if e["level"] == "SEVERE"]
    assert errors == []

    # the numbers on the page are the run's: each evaluation as shown, and its exact value
    evals = {int(p.stem[5:]): json.loads(p.read_text()) for p in (finished / "eval").glob("step_*.json")}
    cells = browser.find_elements(By.CSS_SELECTOR, "#run-0 table.evaluations td[data-key]")
    assert len(cells) == sum(1 for e in evals.values() for k, v in e.items()
                             if k != "step" and isinstance(v, (int, float)) and not isinstance(v, bool))
    for cell in cells:
        step, key = int(cell.get_attribute("data-step")), cell.get_attribute("data-key")
        assert cell.text == number(evals[step][key]) and json.loads(cell.get_attribute("data-value")) == \
            evals[step][key]
    best = json.loads((finished / "checkpoints" / "best.json").read_text())
    compared = browser.find_element(By.CSS_SELECTOR, "table.comparison td[data-run='finished'][data-key='best/fid']")
    assert compared.text == f"fid {number(best['fid'])}"
    last = evals[max(evals)]
    shown = browser.find_element(By.CSS_SELECTOR, "table.comparison td[data-run='finished'][data-key='fid']")
    assert shown.text == number(last["fid"])
    summary = browser.find_element(By.CSS_SELECTOR, "#run-0 table.summary").text
    assert f"fid {number(best['fid'])} at step {best['step']:,}" in summary and "finished" in summary
    assert "crashed" in browser.find_element(By.CSS_SELECTOR, "#run-1 table.summary").text

    # the timeline: the last grid first, then back one with the button and one with the arrow key
    timeline = browser.find_element(By.ID, "timeline-0")
    label = timeline.find_element(By.CLASS_NAME, "step-label")

    def visible_steps():
        return [f.get_attribute("data-step") for f in timeline.find_elements(By.CSS_SELECTOR, "img.frame")
                if f.is_displayed()]

    assert visible_steps() == ["120"] and label.text == "step 120 (6 of 6)"
    timeline.find_element(By.CLASS_NAME, "prev").click()
    assert visible_steps() == ["100"] and label.text == "step 100 (5 of 6)"
    timeline.send_keys(Keys.ARROW_LEFT)
    assert visible_steps() == ["80"] and label.text == "step 80 (4 of 6)"
    assert [e for e in browser.get_log("browser") if e["level"] == "SEVERE"] == []
