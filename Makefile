# Every target creates the virtualenv it needs; nothing is installed by hand.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-$(shell cat setup.cfg pyproject.toml | cksum | cut -d' ' -f1)

.PHONY: demo test slow bench lint man clean install

$(STAMP): setup.cfg pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e '.[test]' 2>&1 | grep -v "^WARNING: Location" || true
	$(BIN)/python -c "import arrctl.cli, google.cloud.run_v2, wandb, pytest, freezegun"
	rm -f $(VENV)/.installed-*
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(BIN)/arrctl --demo get

test: $(STAMP)
	$(BIN)/python -m pytest -q -m "not slow"

slow: $(STAMP)
	$(BIN)/python -m pytest -q -m slow

bench: $(STAMP)
	$(BIN)/python bench/corpus.py
	$(BIN)/python bench/run.py --soak 1000
	$(BIN)/python bench/faults.py
	$(BIN)/python bench/chaos.py
	$(BIN)/python bench/trace.py

lint: $(STAMP)
	$(BIN)/python -m pyflakes arrctl tests bench
	$(BIN)/python -m mypy

man: $(STAMP)
	$(BIN)/python -m arrctl.manpage > man/arrctl.1

clean:
	rm -rf $(VENV) build *.egg-info
