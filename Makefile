# fercore: `make test` and `make demo` work on a fresh clone with only Python 3.11 installed.
PYTHON ?= $(shell command -v python3.11 2>/dev/null || command -v python3)
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.fercore-installed
PYTEST_ARGS ?=
# pytest-xdist workers: one per core. Tests sharing an expensive session fixture (the demo suite, the thesis
# run, the small FER2013 model) stay on one worker (tests/conftest.py groups them). TEST_JOBS=0 runs in one process.
TEST_JOBS ?= auto

# Debian packages for the PDF (XeLaTeX: the findings use Unicode; xindy for the index).
TEX_PACKAGES := latexmk texlive-latex-recommended texlive-latex-extra texlive-fonts-recommended texlive-xetex \
	texlive-plain-generic tex-gyre fonts-freefont-otf xindy
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: help venv test test-fast demo book pdf gpu-data clean

help:
	@echo "make test      create .venv if missing, install fercore[test,book,explain,onnx] with pinned versions and"
	@echo "               the MTCNN face detector (facenet-pytorch, --no-deps), run pytest"
	@echo "make test-fast the same without tests marked slow"
	@echo "make demo      the same set-up, then everything on the embedded demo: data, training, grid extraction,"
	@echo "               the four thesis notebooks (configs/suite_demo.yaml) and the HTML book"
	@echo "make book      rebuild the HTML book from the newest finished suite run"
	@echo "make pdf       the book as PDF (installs the Debian TeX packages when missing)"
	@echo "make venv      only the set-up"
	@echo "make gpu-data  copy ../shared FER2013 train + val into data/gpu/fer2013 (git-ignored) for benchmarks/gpu_check.sh"

# Re-run the install when the project's requirements change; otherwise reuse the environment.
$(STAMP): pyproject.toml constraints.txt
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -c constraints.txt -e '.[test,book,explain,onnx]'
	@# The face detector (fercore.faces: MTCNN, its weights inside the wheel). facenet-pytorch 2.6.0 declares
	@# torch<2.3, numpy<2 and Pillow<10.3, so a normal install would replace our pinned torch / numpy / Pillow;
	@# measured, it runs on them. --no-deps installs it alone, at the version pinned in constraints.txt (its
	@# own needs, requests and tqdm, come with the set above). Tests of fercore.faces need it and never skip.
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --no-deps -c constraints.txt facenet-pytorch
	$(BIN)/python -c "import facenet_pytorch, requests"
	$(BIN)/python -m ipykernel install --sys-prefix --name fercore --display-name "Python (fercore)" >/dev/null
	@touch $(STAMP)

venv: $(STAMP)

test: $(STAMP)
	$(BIN)/python -m pytest -n $(TEST_JOBS) --dist loadgroup --durations=25 $(PYTEST_ARGS)

test-fast: $(STAMP)
	$(BIN)/python -m pytest -m "not slow" -n $(TEST_JOBS) --dist loadgroup $(PYTEST_ARGS)

demo: $(STAMP)
	$(BIN)/fercore demo --data data/demo --results results/demo
	$(BIN)/fercore suite run --params configs/suite_demo.yaml
	$(BIN)/fercore suite book

book: $(STAMP)
	$(BIN)/fercore suite book

pdf: $(STAMP)
	@if ! (command -v latexmk && command -v xelatex && command -v xindy) >/dev/null; then \
		echo "installing TeX: $(TEX_PACKAGES)"; \
		$(SUDO) apt-get update -qq && \
		$(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $(TEX_PACKAGES); \
	fi
	$(BIN)/fercore suite book --builder pdflatex

# FER2013 beside the checkout, copied where the device tool can carry it (carry: ["data/gpu"]; about 51 MiB).
FER2013_SHARED ?= ../shared/data/fer2013
gpu-data:
	@test -d $(FER2013_SHARED)/train && test -d $(FER2013_SHARED)/val || { echo "no FER2013 at $(FER2013_SHARED)"; exit 2; }
	mkdir -p data/gpu/fer2013
	rm -rf data/gpu/fer2013/train data/gpu/fer2013/val
	cp -r $(FER2013_SHARED)/train $(FER2013_SHARED)/val data/gpu/fer2013/
	@du -sh --apparent-size data/gpu

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache
