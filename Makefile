# Two commands matter (see README): `make demo` and `make test`. Both work from nothing but
# Python 3.11: they create the virtualenvs they need from the project's own files.
PYTHON ?= python3
VENV := .venv
INFRA_VENV := .venv-infra
STATE ?= .rollout/demo

JS_TESTS := tests/js

.PHONY: demo test test-main test-infra lint setup setup-infra setup-js build-lambda bench clean

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install -q --upgrade pip
	$(VENV)/bin/pip install -q -e '.[dev,k8s]'
	touch $@

# The Pulumi program's own environment: pulumi needs protobuf<7, the flagd provider >=7.35.
$(INFRA_VENV)/.installed: infra/requirements.txt infra/requirements-test.txt
	$(PYTHON) -m venv $(INFRA_VENV)
	$(INFRA_VENV)/bin/pip install -q --upgrade pip
	$(INFRA_VENV)/bin/pip install -q -r infra/requirements.txt -r infra/requirements-test.txt
	touch $@

# The JavaScript flagd engine for the cross-engine cohort test (tests/test_flags.py): exactly the
# versions in tests/js/package-lock.json, from the npm registry (Node 20 + npm on the machine).
$(JS_TESTS)/node_modules/.installed: $(JS_TESTS)/package.json $(JS_TESTS)/package-lock.json
	cd $(JS_TESTS) && npm ci --no-audit --no-fund
	touch $@

setup: $(VENV)/.installed
setup-infra: $(INFRA_VENV)/.installed
setup-js: $(JS_TESTS)/node_modules/.installed

demo: $(VENV)/.installed
	STATE=$(STATE) VENV=$(VENV) bash scripts/demo.sh

lint: $(VENV)/.installed
	$(VENV)/bin/ruff check .
	$(VENV)/bin/lint-imports

test-main: $(VENV)/.installed $(JS_TESTS)/node_modules/.installed
	$(VENV)/bin/pytest

test-infra: $(INFRA_VENV)/.installed
	$(INFRA_VENV)/bin/python -m pytest --confcutdir=tests/infra tests/infra

test: lint test-main test-infra

build-lambda: $(INFRA_VENV)/.installed
	$(INFRA_VENV)/bin/python -m infra.build_archive --out build/lambda.zip

bench: $(VENV)/.installed
	for b in benchmarks/*.py; do $(VENV)/bin/python $$b || exit 1; done

clean:
	rm -rf $(VENV) $(INFRA_VENV) $(JS_TESTS)/node_modules .rollout .pytest_cache
