# The two commands of this project (see README): `make serve` and `make test`.
VENV ?= .venv
PYTHON ?= python3

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --upgrade pip
	$(VENV)/bin/pip install --quiet -e '.[dev]'
	touch $@

.PHONY: install serve test
install: $(VENV)/.installed

serve: $(VENV)/.installed
	$(VENV)/bin/fimg serve

test: $(VENV)/.installed
	$(VENV)/bin/python -m pytest -q -p no:cacheprovider
