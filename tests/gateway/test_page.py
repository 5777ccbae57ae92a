"""GET /, the page for people, in a real headless Chromium (Debian's chromium, as `make test` installs it)
driven by Playwright: the catalog fills the model list, a photo goes in (picked, then dropped), the top 5
come out with bars and the latency, and an error reads as one. Takes a screenshot: in a temporary directory, or
where PAGE_SCREENSHOT says (PAGE_SCREENSHOT=docs/img/page.png renews the one in docs/gateway.md; tests never
write tracked files otherwise)."""

from __future__ import annotations

import base64
import os
import shutil
from pathlib import Path

import pytest
from playwright.sync_api import expect, sync_playwright

from tests.conftest import DATA, photo

pytestmark = pytest.mark.e2e
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--no-first-run", "--disable-sync"]


@pytest.fixture(scope="module")
def browser():
    executable = shutil.which("chromium")
    if executable is None:  # `make test` installs it; a bare run must not pass silently
        pytest.fail("chromium not found: install the Debian package (scripts/system-deps.sh chromium)")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture
def page(browser, gateway):
    context = browser.new_context(viewport={"width": 960, "height": 640}, device_scale_factor=1)
    context.set_default_timeout(60_000)
    page = context.new_page()
    page.goto(gateway.url + "/")
    yield page
    context.close()


def top5(gateway, name: str) -> list[str]:
    response = gateway.predict("resnet18", body=photo(name), params={"topk": 5})
    assert response.status_code == 200, response.text
    return [p["label"] for p in response.json()["predictions"]]


def test_the_page_classifies_a_photo(page, gateway, tmp_path):
    catalog = [m["name"] for m in gateway.http.get("/models").json()["models"]]
    select = page.locator("#model")
    expect(select).to_be_enabled()
    assert sorted(select.locator("option").evaluate_all("options => options.map(o => o.value)")) == sorted(catalog)
    expect(select).to_have_value("resnet18")
    expect(page.locator("#model-info")).to_contain_text("1000 classes")

    page.set_input_files("#file", str(DATA / "chelsea.jpg"))
    labels = page.locator("#predictions li .label")
    expect(labels).to_have_count(5, timeout=120_000)  # the first prediction may load the model
    assert labels.all_inner_texts() == top5(gateway, "chelsea.jpg")
    widths = page.locator("#predictions .bar div").evaluate_all("bars => bars.map(b => parseFloat(b.style.width))")
    assert widths == sorted(widths, reverse=True) and 0 < widths[0] <= 100
    assert all(text.endswith("%") for text in page.locator("#predictions .score").all_inner_texts())
    latency = page.locator("#latency")
    expect(latency).to_contain_text("ms round trip")
    assert int(latency.get_attribute("data-ms")) >= 0
    expect(page.locator("#drop img")).to_be_visible()
    expect(page.locator("#error")).to_be_empty()
    # the test archives carry fixed-seed weights: the page says so, and how to get the published ones
    expect(page.locator("#weights-note")).to_be_visible()
    expect(page.locator("#weights-note")).to_contain_text("resnet18 serves fixed-seed weights")
    expect(page.locator("#weights-note")).to_contain_text("zooserve store build resnet18")

    # dropped rather than picked: the same path, another photo
    dropped = page.evaluate_handle("""(b64) => {
        const bytes = Uint8Array.from(atob(b64), c => c.charCodeAt(0));
        const transfer = new DataTransfer();
        transfer.items.add(new File([bytes], "rocket.jpg", {type: "image/jpeg"}));
        return transfer;
    }""", base64.b64encode(photo("rocket.jpg")).decode())
    page.dispatch_event("#drop", "drop", {"dataTransfer": dropped})
    expect(page.locator("#drop img")).to_have_attribute("alt", "rocket.jpg")
    expected = top5(gateway, "rocket.jpg")
    page.wait_for_function("""(expected) => [...document.querySelectorAll("#predictions li .label")]
        .map(label => label.textContent).join("|") === expected""", arg="|".join(expected))
    screenshot = Path(os.environ.get("PAGE_SCREENSHOT") or tmp_path / "page.png")
    page.screenshot(path=str(screenshot), full_page=True)  # with the model warm: an everyday request's latency
    assert screenshot.read_bytes().startswith(b"\x89PNG")


def test_the_page_shows_an_error(page):
    expect(page.locator("#model")).to_be_enabled()
    page.set_input_files("#file", {"name": "notes.txt", "mimeType": "text/plain", "buffer": b"not an image"})
    expect(page.locator("#error")).not_to_be_empty(timeout=30_000)
    expect(page.locator("#predictions")).to_contain_text("No prediction")
    expect(page.locator("#weights-note")).to_be_hidden()
