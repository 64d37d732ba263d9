"""Issue 29: the page as a user walks it, in headless Chromium: a folder indexed by the CLI
shows its pictures and opens its hits; files added through the page are stored exactly as the
CLI stores them; back/forward, the empty state, paging, filters, timing, word-boundary
snippets, a 360 px screen and the favicon."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from typer.testing import CliRunner

from omniretrieve.cli import app as cli
from omniretrieve.server.config import ServerConfig
from tests.builders.browser import chromium, needs_chromium, wait_for, wait_until
from tests.builders.folders import LATIN1, user_folder
from tests.builders.servers import running_server

pytestmark = [
    needs_chromium,
    pytest.mark.skipif(shutil.which("tesseract") is None, reason="tesseract-ocr is not installed"),
]
KEY = "journey-key"
HEADERS = {"Authorization": f"Bearer {KEY}"}


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A PDF, a PNG and Markdown (and the rest of a user's folder)."""
    return user_folder(Path(tmp_path_factory.mktemp("folder")) / "f")


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory, folder: Path) -> Path:
    root = Path(tmp_path_factory.mktemp("collections"))
    result = CliRunner().invoke(cli, ["index", "mine", "--from", str(folder), "--root", str(root)])
    assert result.exit_code == 0, result.output
    return root


@pytest.fixture(scope="module")
def server(root: Path) -> Iterator[str]:
    config = ServerConfig(api_keys=(KEY,), collections_root=root)
    with running_server(config) as base:
        yield base


@pytest.fixture(scope="module")
def browser(server: str) -> Iterator[object]:
    with chromium() as driver:
        driver.get(f"{server}/")
        driver.execute_script(f"localStorage.setItem('omniretrieve-key', '{KEY}')")
        yield driver


def natural_width(browser, css: str) -> int:
    wait_for(browser, css)
    return wait_until(browser, f'return document.querySelector("{css}").naturalWidth')


def test_a_folder_indexed_by_the_cli_shows_its_pictures_and_opens_its_hits(
    server: str, browser
) -> None:
    from selenium.webdriver.common.by import By

    browser.get(f"{server}/?collection=mine&q=glaciers+valleys&mode=sparse")
    hit = wait_for(browser, "#hits li.hit[data-id='docs/spec.pdf#page=1']")
    assert "page 1 of 2" in hit.find_element(By.CSS_SELECTOR, ".where").text
    assert natural_width(browser, "#hits li.hit[data-id='docs/spec.pdf#page=1'] img.thumbnail") > 0
    hit.find_element(By.CSS_SELECTOR, ".open").click()
    viewer = wait_for(browser, "dialog#viewer[open]")
    assert natural_width(browser, "#viewer-image") > 1000  # the whole page
    assert "Glaciers" in wait_for(browser, "#viewer-text mark").text
    browser.find_element(By.ID, "viewer-close").click()
    assert viewer.get_attribute("open") is None
    browser.get(f"{server}/?collection=mine&q=youtube+stream+status&mode=sparse")
    png = "#hits li.hit[data-id='youtube-stream-status.png'] img.thumbnail"
    assert natural_width(browser, png) > 0
    browser.get(f"{server}/?collection=mine&q=giraffes+sleep&mode=sparse")
    wait_for(browser, "#hits li.hit[data-id='notes.md'] .open").click()
    text = wait_for(browser, "#viewer-text mark")
    assert "Giraffes sleep less than two hours a day." in browser.find_element(
        By.ID, "viewer-text"
    ).text and text.text in ("Giraffes", "giraffes", "sleep")
    assert not browser.find_element(By.ID, "viewer-image").is_displayed()
    status = browser.find_element(By.ID, "status").text
    assert " ms" in status and "hit(s)" in status  # counts and timing


def test_files_added_through_the_page_are_stored_as_the_cli_stores_them(
    server: str, browser, root: Path, folder: Path, tmp_path: Path
) -> None:
    from selenium.webdriver.common.by import By

    flat = tmp_path / "flat"
    flat.mkdir()
    shutil.copy(folder / "docs" / "spec.pdf", flat / "spec.pdf")
    shutil.copy(folder / "latin1.txt", flat / "latin1.txt")
    result = CliRunner().invoke(cli, ["index", "bycli", "--from", str(flat), "--root", str(root)])
    assert result.exit_code == 0, result.output
    httpx.post(f"{server}/v1/collections", json={"name": "bypage"}, headers=HEADERS)
    browser.get(f"{server}/?collection=bypage")
    wait_for(browser, "#collection option[value=bypage]")
    browser.find_element(By.ID, "files").send_keys(f"{flat / 'spec.pdf'}\n{flat / 'latin1.txt'}")
    added = wait_for(browser, "#added.done")
    assert "added 3" in added.text  # two pages and the text

    def stored(name: str) -> dict[str, dict]:
        rows = httpx.get(f"{server}/v1/collections/{name}/documents", headers=HEADERS).json()[
            "documents"
        ]
        for row in rows:
            row["metadata"].pop("folder", None)  # where the CLI's files came from
        return {row["id"]: row for row in rows}

    by_page, by_cli = stored("bypage"), stored("bycli")
    assert sorted(by_page) == ["latin1.txt", "spec.pdf#page=1", "spec.pdf#page=2"]
    for doc_id, row in by_cli.items():  # field by field
        for field in ("id", "text", "image", "metadata", "hash"):
            assert by_page[doc_id].get(field) == row.get(field), (doc_id, field)
    assert LATIN1 in by_page["latin1.txt"]["text"]  # not U+FFFD
    assert not by_page["spec.pdf#page=1"]["text"].startswith("%PDF")


def test_back_and_forward_leave_one_collection_list(server: str, browser) -> None:
    from selenium.webdriver.common.by import By

    browser.get(f"{server}/?collection=mine&q=giraffes")
    wait_for(browser, "#hits li.hit")
    box = browser.find_element(By.ID, "q")
    box.clear()
    box.send_keys("glaciers")
    browser.find_element(By.CSS_SELECTOR, "#search button[type=submit]").click()
    wait_until(browser, "return location.search.includes('q=glaciers')")
    for _ in range(2):
        browser.back()
        wait_until(browser, "return document.getElementById('q').value === 'giraffes'")
        browser.forward()
        wait_until(browser, "return document.getElementById('q').value === 'glaciers'")
    names = [
        o.get_attribute("value")
        for o in browser.find_elements(By.CSS_SELECTOR, "#collection option")
    ]
    assert len(names) == len(set(names)) and "mine" in names


def test_paging_filters_snippets_and_a_small_screen(server: str, browser) -> None:
    from selenium.webdriver.common.by import By

    words = "alpha beta gamma delta epsilon zeta eta theta iota kappa lambda " * 12
    documents = [
        {"id": f"long{n:02d}", "text": f"{words} shared marker {n}",
         "metadata": {"kind": "odd" if n % 2 else "even"}}
        for n in range(14)
    ]  # fmt: skip
    httpx.post(f"{server}/v1/collections", json={"name": "paged"}, headers=HEADERS)
    httpx.put(
        f"{server}/v1/collections/paged/documents",
        json={"documents": documents},
        headers=HEADERS,
        timeout=60,
    ).raise_for_status()
    browser.get(f"{server}/?collection=paged&q=shared+marker&mode=sparse")
    wait_for(browser, "#hits li.hit")
    assert len(browser.find_elements(By.CSS_SELECTOR, "#hits li.hit")) == 10
    snippet = browser.find_element(By.CSS_SELECTOR, "#hits li.hit .snippet").text
    assert snippet.startswith("… ") or snippet.endswith(" …")  # cut, and said so
    assert all(
        w in words.split() or w in ("…", "shared", "marker") or w.isdigit()
        for w in snippet.replace("…", " ").split()
    )  # fmt: skip  (whole words)
    browser.find_element(By.ID, "next").click()
    wait_until(browser, "return location.search.includes('page=2')")
    wait_until(browser, "return document.querySelectorAll('#hits li.hit').length === 4")
    browser.back()
    wait_until(browser, "return document.querySelectorAll('#hits li.hit').length === 10")
    select = wait_for(browser, "#filters select[data-field=kind]")
    from selenium.webdriver.support.ui import Select

    Select(select).select_by_value(json.dumps("odd"))
    wait_until(browser, "return location.search.includes('f.kind')")
    wait_until(browser, "return document.querySelectorAll('#hits li.hit').length === 7")
    metrics = {"width": 360, "height": 780, "deviceScaleFactor": 1, "mobile": True}
    browser.execute_cdp_cmd("Emulation.setDeviceMetricsOverride", metrics)  # a 360 px phone
    try:
        browser.get(f"{server}/?collection=paged&q=shared+marker&mode=sparse")
        wait_for(browser, "#hits li.hit")
        wait_for(browser, "#filters select")
        widths = browser.execute_script(
            "return [document.documentElement.clientWidth, document.documentElement.scrollWidth]"
        )
        assert widths == [360, 360]  # no horizontal scrolling
    finally:
        browser.execute_cdp_cmd("Emulation.clearDeviceMetricsOverride", {})
    assert httpx.get(f"{server}/favicon.ico").status_code == 200


def test_the_image_control_is_offered_only_where_a_stage_reads_images(server: str) -> None:
    shown = httpx.get(f"{server}/v1/collections/mine", headers=HEADERS).json()
    assert shown["query_image"] == {"embedders": [], "ocr": True}  # MiniLM + OCR


def test_the_empty_state_creates_a_collection(tmp_path: Path) -> None:
    from selenium.webdriver.common.by import By

    config = ServerConfig(collections_root=tmp_path / "none")
    with running_server(config) as base, chromium() as browser:
        browser.get(f"{base}/")
        empty = wait_for(browser, "#empty:not([hidden])")
        browser.find_element(By.ID, "q").send_keys("anything\n")
        status = wait_for(browser, "#status.error")
        assert "no collection yet" in status.text
        empty.find_element(By.ID, "new-name").send_keys("first")
        empty.find_element(By.CSS_SELECTOR, "button[type=submit]").click()
        wait_until(browser, "return location.search.includes('collection=first')")
        wait_for(browser, "#collection option[value=first]")
        assert browser.find_element(By.ID, "empty").get_attribute("hidden") is not None
        assert httpx.get(f"{base}/v1/collections").json()["collections"] == ["first"]
