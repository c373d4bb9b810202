# fercore: `make test` and `make demo` work on a fresh clone with only Python 3.11 installed.
PYTHON ?= $(shell command -v python3.11 2>/dev/null || command -v python3)
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.fercore-installed
PYTEST_ARGS ?=

.PHONY: help venv test test-fast demo clean

help:
	@echo "make test      create .venv if missing, install fercore[test,book,explain,onnx] with pinned versions, run pytest"
	@echo "make test-fast the same without tests marked slow"
	@echo "make demo      the same set-up, then the main job on the embedded demo data"
	@echo "make venv      only the set-up"

# Re-run the install when the project's requirements change; otherwise reuse the environment.
$(STAMP): pyproject.toml constraints.txt
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -c constraints.txt -e '.[test,book,explain,onnx]'
	$(BIN)/python -m ipykernel install --sys-prefix --name fercore --display-name "Python (fercore)" >/dev/null
	@touch $(STAMP)

venv: $(STAMP)

test: $(STAMP)
	$(BIN)/python -m pytest $(PYTEST_ARGS)

test-fast: $(STAMP)
	$(BIN)/python -m pytest -m "not slow" $(PYTEST_ARGS)

demo: $(STAMP)
	$(BIN)/fercore demo --data data/demo --results results/demo

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache
