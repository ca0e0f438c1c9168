# make run  : set up (venv, pinned requirements, poppler, tesseract) and start the web app
# make test : same set-up plus test tools and a headless browser, then ruff + pytest (offline)
# make test-fast : the same, without the slow tiers (browser, processes, office, scale): minutes
SHELL := /bin/bash
.SHELLFLAGS := -o pipefail -c
VENV ?= .venv
PY := $(VENV)/bin/python
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
# pip prints one harmless line per package for this machine's extra local indexes
PIP_QUIET := { grep -v "is ignored: it is neither a file nor a directory" || true; }
APT_UPDATED := /tmp/.visual-rag-apt-updated
# LibreOffice without its desktop parts: converts office files to PDF (rag/ingest/office.py)
OFFICE_PKGS := libreoffice-writer-nogui libreoffice-calc-nogui libreoffice-impress-nogui
# Pango and fonts (Latin, and CJK by the Droid fallback): WeasyPrint draws text files and e-mails
TEXT_PKGS := libpango-1.0-0 libpangoft2-1.0-0 fonts-dejavu-core fonts-droid-fallback

.PHONY: run test test-fast lint format system-deps test-system-deps clean

run: $(VENV)/.runtime system-deps
	$(PY) app.py serve $(ARGS)

test: $(VENV)/.dev test-system-deps
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .
	HF_HUB_OFFLINE=1 MPLBACKEND=Agg $(PY) -m pytest $(PYTEST_ARGS)

# Every test not marked slow (tests/conftest.py marks the slow tiers): under 3 minutes on 2 cores.
test-fast: $(VENV)/.dev test-system-deps
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .
	HF_HUB_OFFLINE=1 MPLBACKEND=Agg $(PY) -m pytest -m "not slow" $(PYTEST_ARGS)

lint: $(VENV)/.dev
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .

format: $(VENV)/.dev
	$(PY) -m ruff check --fix .
	$(PY) -m ruff format .

$(VENV)/bin/python:
	python3 -m venv $(VENV)

$(VENV)/.runtime: requirements.txt | $(VENV)/bin/python
	$(PY) -m pip install -q -r requirements.txt 2>&1 | $(PIP_QUIET)
	touch $@

$(VENV)/.dev: requirements-dev.txt $(VENV)/.runtime
	$(PY) -m pip install -q -r requirements-dev.txt 2>&1 | $(PIP_QUIET)
	touch $@

# poppler renders PDFs and reads their text; Tesseract reads the pages that have no text (scans);
# LibreOffice converts office files; Pango draws text files and e-mails.
system-deps:
	@command -v pdftoppm >/dev/null && command -v pdfinfo >/dev/null && command -v pdftotext >/dev/null || $(MAKE) --no-print-directory apt PKGS="poppler-utils"
	@command -v tesseract >/dev/null || $(MAKE) --no-print-directory apt PKGS="tesseract-ocr"
	@command -v soffice >/dev/null || $(MAKE) --no-print-directory apt PKGS="$(OFFICE_PKGS)"
	@{ /sbin/ldconfig -p | grep libpangoft2-1.0.so.0 >/dev/null && [ -d /usr/share/fonts/truetype/dejavu ] && [ -d /usr/share/fonts/truetype/droid ]; } || $(MAKE) --no-print-directory apt PKGS="$(TEXT_PKGS)"

# The browser tests drive Debian's chromium (never a downloaded browser).
test-system-deps: system-deps
	@command -v chromium >/dev/null && command -v chromedriver >/dev/null || $(MAKE) --no-print-directory apt PKGS="chromium chromium-driver"

apt:
	@[ -f $(APT_UPDATED) ] || { $(SUDO) apt-get update -qq && touch $(APT_UPDATED); }
	DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq $(PKGS) >/dev/null

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
