# The kit's everyday commands. `make demo` and `make test` set up what they need first.
VENV ?= .venv
PY := $(VENV)/bin/python
MANIFEST ?= manifests/multicontainer-pod.yaml
DURATION ?= 40

.PHONY: setup venv engine demo test test-fast test-browser lint lab docs bench clean

setup: venv engine

venv:
	VENV=$(VENV) scripts/setup-venv.sh

# Podman (installed and made usable when missing) and the lab's images (stand-ins built without a registry).
engine:
	scripts/prepare-podman.sh
	scripts/build-standin-images.sh

demo: setup
	$(VENV)/bin/labkit run $(MANIFEST) --duration $(DURATION)

test: setup
	$(PY) -m pytest

# ruff (lint, then formatting) and mypy, configured in pyproject.toml; zero findings is the bar.
lint: venv
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy

# The tests that need no engine: seconds, not minutes.
test-fast:
	$(PY) -m pytest -m "not podman" tests

# The notebooks in JupyterLab in Debian's chromium, as a student runs them; screenshots in build/screenshots/.
test-browser: setup
	$(PY) -m pytest -p no:cacheprovider -m browser tests/browser

lab: venv
	$(VENV)/bin/jupyter lab notebooks/

# The static HTML site (README, notebooks with their committed outputs, API reference) in build/docs/html/.
# Any warning fails it, a broken cross-reference included (-n); -E reads every page again, so a
# second run cannot pass by skipping the pages that failed the first.
docs: venv
	$(VENV)/bin/sphinx-build -M html docs build/docs -E -W --keep-going -n

# The benchmarks of parsing, polling, resolution and start-up on this machine: one table, in minutes.
bench: setup
	$(PY) benchmarks/run.py

clean:
	rm -rf $(VENV) *.egg-info .pytest_cache
