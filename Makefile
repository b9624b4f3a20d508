# genmedia: every command a newcomer needs. Everything installs into .venv on first use.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
TERRAFORM ?= terraform
STAMP := $(VENV)/.installed-$(shell cat requirements.txt requirements-dev.txt pyproject.toml | cksum | cut -d' ' -f1)

.PHONY: install run test fuzz migrate bench lint api-key tf clean

$(STAMP): requirements.txt requirements-dev.txt pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	@$(PY) -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	@$(PY) -m pip install --quiet --disable-pip-version-check --no-deps -e .
	@rm -f $(VENV)/.installed-* && touch $@

install: $(STAMP)

## make run: PostgreSQL (embedded unless DATABASE_URL), migrations, the three functions; Ctrl-C stops all
run: install
	@$(PY) -m devtools.run_local

## make test: unit, integration (real PostgreSQL) and e2e (Pub/Sub emulator) tests
test: install
	@$(PY) -m pytest -q tests/unit/test_exceptions.py --cov=shared.exceptions --cov-branch \
		--cov-report=term-missing:skip-covered --cov-fail-under=100
	@$(PY) -m pytest $(PYTEST_ARGS)

## make fuzz: the fuzz tests with more examples (FUZZ_EXAMPLES, default 200)
fuzz: install
	@FUZZ_EXAMPLES=$(or $(FUZZ_EXAMPLES),200) $(PY) -m pytest tests/integration/test_fuzz_http.py \
		tests/integration/test_fuzz_batch.py $(PYTEST_ARGS)

## make migrate: apply migrations to DATABASE_URL (idempotent, safe to run concurrently)
migrate: install
	@$(PY) -m devtools.migrate

## make bench: benchmarks, each printed as a ratio against its baseline
bench: install
	@$(PY) -m bench

## make api-key NAME=x [SCOPES=generate,batch] [EXPIRES_IN_DAYS=n]: prints a fresh key on its last line
api-key: install
	@test -n "$(NAME)" || { echo "usage: make api-key NAME=x [SCOPES=generate,batch,schedule,admin]" >&2; exit 2; }
	@$(PY) -m devtools.api_key "$(NAME)" $(if $(SCOPES),--scopes $(SCOPES)) $(if $(EXPIRES_IN_DAYS),--expires-in-days $(EXPIRES_IN_DAYS))

## make tf ENV=dev [TF_ARGS=plan]: terraform in infra/ on ENV's state (ENV.gcs.tfbackend) with ENV.tfvars
# Each environment keeps its own .terraform directory and is initialised on every run, so the state
# and the settings always belong to the same environment. Any terraform command goes in TF_ARGS
# ("apply", "output", "destroy", "state list"); the var file reaches those that take one.
TF_ENV_DIR = infra/environments
tf:
	@test -n "$(ENV)" -a -f "$(TF_ENV_DIR)/$(ENV).tfvars" -a -f "$(TF_ENV_DIR)/$(ENV).gcs.tfbackend" || \
		{ echo "usage: make tf ENV=<env> [TF_ARGS=plan], with $(TF_ENV_DIR)/<env>.tfvars and <env>.gcs.tfbackend" >&2; exit 2; }
	@cd infra && export TF_DATA_DIR=.terraform/$(ENV) \
		TF_CLI_ARGS_plan="-var-file=environments/$(ENV).tfvars" TF_CLI_ARGS_apply="-var-file=environments/$(ENV).tfvars" \
		TF_CLI_ARGS_destroy="-var-file=environments/$(ENV).tfvars" TF_CLI_ARGS_console="-var-file=environments/$(ENV).tfvars" \
		TF_CLI_ARGS_import="-var-file=environments/$(ENV).tfvars" TF_CLI_ARGS_refresh="-var-file=environments/$(ENV).tfvars" && \
		$(TERRAFORM) init -input=false -reconfigure -backend-config=environments/$(ENV).gcs.tfbackend && \
		$(TERRAFORM) $(or $(TF_ARGS),plan)

lint: install
	@$(VENV)/bin/ruff check shared functions devtools tests bench genmedia_cli infra/scripts
	@$(VENV)/bin/mypy shared
	@$(VENV)/bin/mypy --strict genmedia_cli

clean:
	rm -rf $(VENV) .local/test-*
