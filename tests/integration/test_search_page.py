"""The search page and the API docs in a real browser (headless Chromium driven by Selenium),
with every host but the server's unreachable: nothing may come from a CDN."""

from __future__ import annotations

import io
import shutil
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from omniretrieve.server.config import ServerConfig
from tests.builders.browser import chromium, needs_chromium, wait_for, wait_until
from tests.builders.servers import running_server

pytestmark = needs_chromium

DOCUMENTS = [
    {"id": "tides", "text": "Tides rise twice a day. The Moon's gravity pulls the oceans."},
    {"id": "stocks", "text": "The stock market fell on Monday after the report."},
    {"id": "cats", "text": "Cats eat fish and mice and sleep most of the day."},
]


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    config = ServerConfig(
        models=("all-MiniLM-L6-v2", "omniretrieve-hybrid-reranker"),
        api_keys=("page-key",),
        collections_root=Path(tmp_path_factory.mktemp("collections")),
    )
    with running_server(config) as base:
        headers = {"Authorization": "Bearer page-key"}
        assert httpx.post(f"{base}/v1/collections", json={"name": "notes"}, headers=headers)
        httpx.put(
            f"{base}/v1/collections/notes/documents",
            json={"documents": DOCUMENTS},
            headers=headers,
            timeout=60,
        ).raise_for_status()
        yield base


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    with chromium() as driver:
        yield driver


def test_a_search_link_shows_the_hit_with_its_highlights(server: str, browser) -> None:
    from selenium.webdriver.common.by import By

    browser.get(f"{server}/")
    browser.execute_script("localStorage.setItem('omniretrieve-key', 'page-key')")
    browser.get(f"{server}/?collection=notes&q=moon+gravity&mode=hybrid")
    first = wait_for(browser, "#hits li.hit")
    assert first.get_attribute("data-id") == "tides"
    marked = [m.text for m in first.find_elements(By.CSS_SELECTOR, "mark")]
    assert marked == ["Moon", "gravity"]
    assert "hybrid" in browser.find_element(By.ID, "mode").get_attribute("value")
    # the form writes its state back to the URL: a search is a link
    box = browser.find_element(By.ID, "q")
    box.clear()
    box.send_keys("cats fish")
    browser.find_element(By.CSS_SELECTOR, "#search button[type=submit]").click()
    wait_for(browser, "#hits li.hit[data-id=cats]")
    assert "q=cats+fish" in browser.current_url


def test_a_wrong_key_is_said_on_the_page(server: str, browser) -> None:
    browser.get(f"{server}/")
    browser.execute_script("localStorage.setItem('omniretrieve-key', 'wrong')")
    browser.get(f"{server}/?collection=notes&q=moon")
    wait_for(browser, "#status.error")
    browser.execute_script("localStorage.setItem('omniretrieve-key', 'page-key')")


@pytest.mark.parametrize("path", ["/docs", "/redoc"])
def test_the_api_docs_render_offline(server: str, browser, path: str) -> None:
    """Swagger UI and ReDoc come from the package's own files: they render with no other
    host reachable."""
    from PIL import Image

    browser.get_log("browser")  # drop what earlier pages of this browser logged
    browser.get(f"{server}{path}")
    heading = wait_for(
        browser, "//*[self::h1 or self::h2][contains(., 'omniretrieve')]", by="xpath"
    )
    assert "omniretrieve" in heading.text
    wait_until(browser, "return document.readyState === 'complete'")
    time.sleep(1)  # ReDoc draws its side menu (and its logo) after the heading
    requested = browser.execute_script(
        "return performance.getEntriesByType('resource').map(e => e.name)"
    )
    assert requested and all(url.startswith(server) for url in requested), requested
    blocked = [e["message"] for e in browser.get_log("browser") if e["level"] == "SEVERE"]
    assert not blocked  # nothing refused by the CSP (ReDoc's logo came from a CDN)
    shot = Image.open(io.BytesIO(browser.get_screenshot_as_png())).convert("L")
    low, high = shot.getextrema()
    assert high - low > 100  # not a blank page


def test_files_added_from_the_page_are_searchable(server: str, browser, tmp_path: Path) -> None:
    """The page's file picker (the drop zone's handler) indexes files into the collection."""
    from selenium.webdriver.common.by import By

    first = tmp_path / "volcanoes.md"
    first.write_text("# Volcanoes\nVolcanoes release sulfur dioxide when they erupt.")
    second = tmp_path / "penguins.txt"
    second.write_text("Penguins huddle together to keep warm in the Antarctic winter.")
    browser.get(f"{server}/?collection=notes")
    wait_for(browser, "#collection option[value=notes]")
    browser.find_element(By.ID, "files").send_keys(f"{first}\n{second}")
    wait_for(browser, "#added.done")
    assert "added 2" in browser.find_element(By.ID, "added").text
    browser.get(f"{server}/?collection=notes&q=sulfur+dioxide+eruption")
    assert wait_for(browser, "#hits li.hit").get_attribute("data-id") == "volcanoes.md"


def test_the_rerank_playground(server: str, browser) -> None:
    from selenium.webdriver.common.by import By

    browser.get(f"{server}/")
    browser.find_element(By.ID, "rerank-query").send_keys("what do cats eat")
    browser.find_element(By.ID, "rerank-documents").send_keys(
        "The stock market fell.\nCats eat fish and mice.\nParis is in France."
    )
    browser.find_element(By.ID, "rerank-run").click()
    first = wait_for(browser, "#ranked li")
    assert first.text.endswith("Cats eat fish and mice.")
    assert len(browser.find_elements(By.CSS_SELECTOR, "#ranked li")) == 3


def test_the_embeddings_playground(server: str, browser) -> None:
    from selenium.webdriver.common.by import By

    browser.get(f"{server}/")
    browser.find_element(By.ID, "embed-texts").send_keys("cats eat fish\nkittens like fish")
    browser.find_element(By.ID, "embed-run").click()
    wait_for(browser, "#similarities tr")
    cells = [c.text for c in browser.find_elements(By.CSS_SELECTOR, "#similarities td")]
    assert cells[0] == "1.000" and cells[3] == "1.000" and float(cells[1]) > 0.3


def test_an_image_query_is_sent_as_one(server: str, browser, tmp_path: Path) -> None:
    """The page's query image goes to the API as an image query (this collection's MiniLM reads
    text only, so the server's answer, shown on the page, says so)."""
    from PIL import Image
    from selenium.webdriver.common.by import By

    picture = tmp_path / "query.png"
    Image.new("RGB", (40, 30), (200, 30, 30)).save(picture)
    browser.get(f"{server}/?collection=notes")
    wait_for(browser, "#collection option[value=notes]")
    browser.find_element(By.ID, "query-image").send_keys(str(picture))
    browser.find_element(By.ID, "q").clear()
    browser.find_element(By.CSS_SELECTOR, "#search button[type=submit]").click()
    status = wait_for(browser, "#status.error")
    assert "image without text" in status.text


@pytest.mark.skipif(shutil.which("tesseract") is None, reason="tesseract-ocr is not installed")
def test_image_documents_show_a_thumbnail(server: str, browser, tmp_path: Path) -> None:
    """An image document (read by OCR for this text-only collection) is shown with its
    picture, drawn by the images endpoint and fetched with the key."""
    from selenium.webdriver.common.by import By

    from tests.builders.documents import text_image

    page = tmp_path / "slide.png"
    page.write_bytes(text_image(["Quarterly revenue grew", "by twelve percent"], (600, 200)))
    browser.get(f"{server}/?collection=notes")
    wait_for(browser, "#collection option[value=notes]")
    browser.find_element(By.ID, "files").send_keys(str(page))
    wait_for(browser, "#added.done")
    browser.get(f"{server}/?collection=notes&q=quarterly+revenue&mode=sparse")
    hit = wait_for(browser, "#hits li.hit[data-id='slide.png']")
    picture = wait_for(browser, "#hits li.hit img.thumbnail[src^='blob:']")
    assert picture.get_attribute("alt") == "slide.png" and hit.is_displayed()
    assert browser.execute_script("return arguments[0].naturalWidth", picture) > 0


def test_an_image_dropped_on_the_search_form_is_the_query(server: str, browser) -> None:
    """A drop event carrying an image file (built in the page, as a drag from the desktop
    delivers it) searches with that image."""
    browser.get(f"{server}/?collection=notes")
    wait_for(browser, "#collection option[value=notes]")
    browser.execute_script(
        """
        const canvas = document.createElement("canvas");
        canvas.width = 30; canvas.height = 20;
        canvas.toBlob((blob) => {
          const transfer = new DataTransfer();
          transfer.items.add(new File([blob], "query.png", {type: "image/png"}));
          const drop = new DragEvent("drop", {dataTransfer: transfer, bubbles: true});
          document.getElementById("search").dispatchEvent(drop);
        }, "image/png");
        """
    )
    status = wait_for(browser, "#status.error")
    assert "image without text" in status.text  # sent as an image query (MiniLM reads text)


def test_a_document_id_never_makes_the_page_call_another_endpoint(server: str, browser) -> None:
    """Issue 28, item 8: a hit's id goes into the document URL as one encoded segment; an id
    like ``../../../metrics`` still fetches that document (its thumbnail shows), never
    ``/metrics`` with the viewer's key."""
    from tests.builders.servers import png_data_uri

    doc_id = "../../../metrics"
    document = {
        "id": doc_id,
        "text": "Zebra stripes confuse biting flies.",
        "image": png_data_uri(),
    }
    httpx.put(
        f"{server}/v1/collections/notes/documents",
        json={"documents": [document]},
        headers={"Authorization": "Bearer page-key"},
        timeout=60,
    ).raise_for_status()
    browser.get(f"{server}/")
    browser.execute_script("localStorage.setItem('omniretrieve-key', 'page-key')")
    browser.get(f"{server}/?collection=notes&q=zebra+stripes+flies&mode=sparse")
    wait_for(browser, "#hits li.hit img.thumbnail[src^='blob:']")
    requested = browser.execute_script(
        "return performance.getEntriesByType('resource').map((e) => e.name)"
    )
    assert any("/images/..%2F..%2F..%2Fmetrics" in url for url in requested), requested
    assert not any(url.endswith("/metrics") for url in requested), requested


def test_pages_carry_a_content_security_policy(server: str, browser) -> None:
    """The page works under its policy (no inline script runs on it)."""
    response = httpx.get(f"{server}/")
    assert "script-src 'self'" in response.headers["content-security-policy"]
    browser.get(f"{server}/")
    assert browser.execute_script("return typeof window.fetch") == "function"


def test_diverse_and_merged_results_on_the_page(server: str, browser) -> None:
    """Three near-copies and two other documents: "merge duplicates" shows one hit saying
    how many it folded; "diverse" (ticked in the form, kept in the URL) keeps one copy in
    the top 3."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select

    from tests.builders.documents import COPIES_QUERY as QUERY
    from tests.builders.documents import NEAR_COPIES as COPIES

    headers = {"Authorization": "Bearer page-key"}
    httpx.post(f"{server}/v1/collections", json={"name": "copies"}, headers=headers)
    httpx.put(
        f"{server}/v1/collections/copies/documents",
        json={"documents": COPIES},
        headers=headers,
        timeout=60,
    ).raise_for_status()
    browser.get(f"{server}/")
    browser.execute_script("localStorage.setItem('omniretrieve-key', 'page-key')")
    browser.get(f"{server}/?collection=copies&q={QUERY.replace(' ', '+')}&dedup=1")
    first = wait_for(browser, "#hits li.hit")
    assert first.get_attribute("data-id").startswith("copy-")
    assert first.find_element(By.CSS_SELECTOR, ".duplicates").text.startswith("+2 similar")
    assert len(browser.find_elements(By.CSS_SELECTOR, "#hits li.hit")) == 3
    assert browser.find_element(By.ID, "dedup").is_selected()

    browser.get(f"{server}/?collection=copies&q={QUERY.replace(' ', '+')}")
    wait_for(browser, "#hits li.hit")
    Select(browser.find_element(By.ID, "diverse")).select_by_visible_text("high")
    browser.find_element(By.CSS_SELECTOR, "#search button[type=submit]").click()
    wait_until(browser, "return location.search.includes('diverse=0.3')")
    wait_until(
        browser,
        "const top = [...document.querySelectorAll('#hits li.hit')].slice(0, 3);"
        "return top.length === 3 && top.filter(h => h.dataset.id.startsWith('copy-')).length"
        " === 1",
    )
