# The two commands of this project (see README): `make serve` and `make test`.
VENV ?= .venv
PYTHON ?= python3

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --upgrade pip
	$(VENV)/bin/pip install --quiet -e '.[dev]'
	touch $@

# The browser tests drive Debian's Chromium (no browser download) and inject axe-core from the npm registry.
AXE := tests/web/node_modules/axe-core/axe.min.js

$(AXE): tests/web/package.json tests/web/package-lock.json
	cd tests/web && npm ci --no-audit --no-fund --loglevel=error
	touch $@

.PHONY: install serve test browser
install: $(VENV)/.installed

browser:
	@command -v chromium >/dev/null || { apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium; }

serve: $(VENV)/.installed
	$(VENV)/bin/fimg serve

test: $(VENV)/.installed $(AXE) browser
	$(VENV)/bin/python -m pytest -q -p no:cacheprovider
