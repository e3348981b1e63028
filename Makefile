# Mailwarden: `make run` (embedded demo) and `make test` (the whole suite) work on a fresh
# machine with only Python 3.11. See README.md.
PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-$(shell cat pyproject.toml | sha1sum | cut -c1-12)

.PHONY: install run test test-s3 lint format bench bench-quick fuzz clean messages

$(STAMP): pyproject.toml
	@command -v $(PYTHON) >/dev/null 2>&1 || { echo "Python 3.11 is needed ($(PYTHON) not found)"; exit 1; }
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	@rm -f $(VENV)/.installed-*
	@touch $(STAMP)

install: $(STAMP)

run: install
	$(PY) manage.py migrate --noinput
	$(PY) manage.py seed_demo
	$(PY) manage.py ensure_admin
	$(PY) manage.py run_embedded

test: install
	$(PY) -m pytest -q $(PYTEST_ARGS)

# The pipeline's tests again on the S3 file store, encrypted (moto's server on loopback,
# tests/filestore.py); any test runs there with `pytest --file-store=s3-encrypted`.
S3_TESTS := tests/capture/read tests/capture/test_api_captures.py tests/capture/test_webhooks.py \
	tests/capture/smtp/test_transactions.py tests/capture/pipeline/test_dedupe.py \
	tests/capture/pipeline/test_fixtures_matrix.py tests/governance/settings/test_never_log_removal.py \
	tests/capture/retention tests/capture/dsr
test-s3: install
	$(PY) -m pytest -q --file-store=s3-encrypted $(S3_TESTS) $(PYTEST_ARGS)

# The translation catalogues (docs/admin.md "Languages"; needs GNU gettext): collect the marked
# strings into locale/*/django.po, then compile the .mo files, which are committed so a fresh
# clone runs without gettext.
messages: install
	$(PY) manage.py makemessages -l nb -l sv -l pl --no-obsolete --ignore=.venv --ignore=tests --ignore=bench --ignore=docs
	$(PY) manage.py compilemessages --ignore=.venv

lint: install
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .
	$(VENV)/bin/lint-imports

format: install
	$(PY) -m ruff format .
	$(PY) -m ruff check --fix .

bench: install
	@for b in bench/*.py; do case $$b in */_*) continue;; esac; echo "== $$b"; $(PY) $$b $(BENCH_ARGS) || exit 1; done

bench-quick:
	$(MAKE) bench BENCH_ARGS=--quick

fuzz: install
	$(PY) -m pytest -q tests -m fuzz --fuzz-long $(PYTEST_ARGS)

clean:
	rm -rf var/ .pytest_cache
