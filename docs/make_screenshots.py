"""Screenshots of the search page and the offline API docs for the README.

    .venv/bin/python docs/make_screenshots.py

Starts a server on loopback with a collection of 300 SciFact abstracts (from
``../shared/datasets``), opens the pages in headless Chromium (Debian's ``chromium`` and
``chromium-driver``) and writes ``docs/images/search-page.png`` and ``docs/images/docs-page.png``.
"""

from __future__ import annotations

import json
import shutil
import sys
import tempfile
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "src"))


def main() -> None:
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions
    from selenium.webdriver.support.ui import WebDriverWait

    from omniretrieve.server.config import ServerConfig
    from tests.builders.servers import running_server

    corpus = ROOT.parent / "shared" / "datasets" / "scifact" / "corpus.jsonl"
    documents = []
    with corpus.open(encoding="utf-8") as handle:
        for line in list(handle)[:300]:
            record = json.loads(line)
            documents.append(
                {
                    "id": record["_id"],
                    "text": record["text"],
                    "metadata": {"title": record["title"]},
                }
            )
    with tempfile.TemporaryDirectory() as tmp:
        config = ServerConfig(models=("all-MiniLM-L6-v2",), collections_root=Path(tmp))
        with running_server(config) as base:
            httpx.post(f"{base}/v1/collections", json={"name": "scifact"}).raise_for_status()
            httpx.put(
                f"{base}/v1/collections/scifact/documents",
                json={"documents": documents},
                timeout=600,
            ).raise_for_status()
            options = webdriver.ChromeOptions()
            options.binary_location = shutil.which("chromium") or ""
            for argument in ("--headless=new", "--no-sandbox", "--window-size=1100,900"):
                options.add_argument(argument)
            driver = webdriver.Chrome(
                options=options, service=Service(shutil.which("chromedriver"))
            )
            try:
                driver.get(f"{base}/?collection=scifact&q=vitamin+D+and+bone+fractures")
                WebDriverWait(driver, 60).until(
                    expected_conditions.presence_of_element_located((By.CSS_SELECTOR, "li.hit"))
                )
                target = ROOT / "docs" / "images"
                driver.save_screenshot(str(target / "search-page.png"))
                driver.get(f"{base}/docs")
                WebDriverWait(driver, 60).until(
                    expected_conditions.presence_of_element_located(
                        (By.XPATH, "//*[self::h1 or self::h2][contains(., 'omniretrieve')]")
                    )
                )
                driver.save_screenshot(str(target / "docs-page.png"))
            finally:
                driver.quit()
    print("wrote docs/images/search-page.png and docs/images/docs-page.png")


if __name__ == "__main__":
    main()
