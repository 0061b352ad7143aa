# Two commands matter: `make lab` (install + launch) and `make test` (install + whole suite).
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip
ALLOW_ROOT := $(if $(filter 0,$(shell id -u)),--allow-root,)
PYTEST_ARGS ?=

.PHONY: lab test install install-test chromium hub-proxy js lint format bench clean

$(PY):
	python3 -m venv $(VENV)
	$(PIP) install -q -U pip

# Stamps keep repeated `make test` runs from reinstalling; they redo when the inputs change.
# The editable install builds the lab extension once; `develop` links it so rebuilds show up.
# `labextension develop` links share/.../rubberduck-jupyter to the build folder, so the
# wheel's own install.json lands in it; a reinstall would then add that file twice.
$(VENV)/.installed: $(PY) pyproject.toml constraints.txt labextension/package.json
	rm -f rubberduck_jupyter/labextension/install.json
	$(PIP) install -c constraints.txt -e ".[embed]"
	PATH="$(CURDIR)/$(VENV)/bin:$$PATH" $(VENV)/bin/jupyter labextension develop --overwrite .
	touch $@

$(VENV)/.installed-test: $(VENV)/.installed
	rm -f rubberduck_jupyter/labextension/install.json
	$(PIP) install -c constraints.txt -e ".[test]"
	touch $@

install: $(VENV)/.installed

install-test: $(VENV)/.installed-test

lab: install
	$(VENV)/bin/jupyter lab $(ALLOW_ROOT)

# Browser tests drive Debian's chromium; Playwright's own browser download cannot work here.
chromium:
	@command -v chromium >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ]; then \
	    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium); \
	  else echo "chromium missing: sudo apt-get install chromium"; exit 1; fi; }

# tests/hub runs the real configurable-http-proxy that JupyterHub puts in front of its
# servers: installed into tests/hub/proxy from its committed lockfile, never globally. npm ci
# writes node_modules/.package-lock.json, the stamp that redoes it when the lockfile changes.
HUB_PROXY_STAMP := tests/hub/proxy/node_modules/.package-lock.json

$(HUB_PROXY_STAMP): tests/hub/proxy/package-lock.json
	npm ci --prefix tests/hub/proxy --no-audit --no-fund
	touch $@

hub-proxy: $(HUB_PROXY_STAMP)

test: install-test chromium hub-proxy
	$(PY) -m pytest $(PYTEST_ARGS)

# Rebuild the lab extension after editing labextension/src (pip skips it once built).
js: install
	cd labextension && PATH="$(CURDIR)/$(VENV)/bin:$$PATH" jlpm install && PATH="$(CURDIR)/$(VENV)/bin:$$PATH" jlpm build:prod

lint: install-test
	$(VENV)/bin/ruff check rubberduck_jupyter magics tests benchmarks
	$(VENV)/bin/ruff format --check rubberduck_jupyter magics tests benchmarks
	cd labextension && PATH="$(CURDIR)/$(VENV)/bin:$$PATH" jlpm lint

format: install-test
	$(VENV)/bin/ruff format rubberduck_jupyter magics tests benchmarks
	$(VENV)/bin/ruff check --fix rubberduck_jupyter magics tests benchmarks

bench: install-test
	$(PY) benchmarks/startup.py

clean:
	rm -rf $(VENV) labextension/node_modules labextension/lib rubberduck_jupyter/labextension test-artifacts tests/hub/proxy/node_modules
