# omniretrieve: `make serve` runs the main job, `make test` runs everything CI runs.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
HOST ?= 127.0.0.1
PORT ?= 8000

.PHONY: install serve demo test docs lint format bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

# torch first, pinned, so that nothing pulls a multi-GB CUDA build. tesseract (OCR of images
# and scanned PDF pages) comes from the system: installed here when apt-get can.
$(STAMP): $(BIN)/python pyproject.toml constraints.txt
	@command -v tesseract >/dev/null || { command -v apt-get >/dev/null && [ "$$(id -u)" = 0 ] && \
		apt-get install -y -qq tesseract-ocr >/dev/null; } || \
		echo "note: install tesseract-ocr for OCR of images and scanned PDFs"
	$(BIN)/pip install --quiet torch==2.13.0
	$(BIN)/pip install --quiet -c constraints.txt -e '.[dev,train,milvus,integrations,distributed]'
	touch $(STAMP)

install: $(STAMP)

serve: $(STAMP)
	$(BIN)/omniretrieve serve --host $(HOST) --port $(PORT)

demo: $(STAMP)
	$(BIN)/omniretrieve demo

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

format: $(STAMP)
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

test: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/mypy
	HF_HUB_OFFLINE=1 $(BIN)/python -m pytest

# the documentation site into site/; strict: any warning (a broken link, a page left out of
# the navigation) fails the build
docs: $(STAMP)
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict --quiet

bench: $(STAMP)
	$(BIN)/python benchmarks/rerank_scifact.py
	$(BIN)/python benchmarks/embed_throughput.py
	$(BIN)/python benchmarks/server_load.py

clean:
	rm -rf $(VENV) .cache .pytest_cache .ruff_cache site
