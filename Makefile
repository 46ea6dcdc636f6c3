# Two commands do all the set-up on a fresh machine: `make demo` and `make test`.
SHELL := /bin/bash
.DEFAULT_GOAL := help

UV_VERSION := 0.13.8
UV := $(shell command -v uv 2>/dev/null || echo .tools/bin/uv)
VENV := .venv
PY := $(VENV)/bin/python
export UV_PYTHON_DOWNLOADS := never
export JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION := 20
export CDK_DISABLE_CLI_TELEMETRY := true
# Python caches bytecode in the clone (the venv and the project's __pycache__ dirs, all git-ignored), even where the
# environment says not to (PYTHONDONTWRITEBYTECODE=1 on the CI image): otherwise each process of `make test` compiles
# every module it imports again. Only what is imported gets compiled (`uv sync --compile-bytecode` compiled all 9,000
# files of the venv, a minute and a half of CPU on CI, most of them never imported).
unexport PYTHONDONTWRITEBYTECODE
CDK := npx --no-install cdk

.PHONY: help demo test test-unpatched-moto lint typecheck unit synth bench clean

help:  ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' \
		'{ name[NR] = $$1; text[NR] = $$2; if (length($$1) > width) width = length($$1) } \
		END { for (i = 1; i <= NR; i++) printf "  make %-" width "s  %s\n", name[i], text[i] }'

.tools/bin/uv:
	python3 -m venv .tools
	.tools/bin/pip install --quiet "uv==$(UV_VERSION)"

$(VENV)/.synced: pyproject.toml uv.lock | $(UV)
	$(UV) sync --locked --quiet
	@touch $@

node_modules/.installed: package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	@touch $@

demo: $(VENV)/.synced  ## run the main job locally (moto + POS simulators, no AWS account)
	$(VENV)/bin/possync demo

lint: $(VENV)/.synced  ## ruff lint and format check
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

typecheck: $(VENV)/.synced  ## mypy (strict) on the shipped code and the benchmarks
	$(VENV)/bin/mypy functions possync simulators infra bench

unit: $(VENV)/.synced  ## the fast tests only (no synth, no end-to-end)
	$(VENV)/bin/pytest -q -m "not e2e and not infra"

synth: $(VENV)/.synced node_modules/.installed  ## synthesize the CDK app with the pinned CLI (bundles the Lambdas)
	$(CDK) synth --no-notices --quiet

test: $(VENV)/.synced node_modules/.installed  ## everything CI runs: lint, types, all tests, CDK synth
	$(MAKE) --no-print-directory lint
	@# Three jobs share the cores: mypy (one core, about 3 minutes cold), the store tests against unpatched moto, and
	@# all the tests with 4 workers (their tests spend much of their time waiting on sockets: moto, the POS
	@# simulators). Each job's output is printed when it ends; `make test` fails if any of them failed.
	@# Before them, one collection compiles what the tests import and writes pytest's rewritten test modules, so the
	@# workers load them instead of each compiling and rewriting them again.
	@types=$$(mktemp); unpatched=$$(mktemp); \
	($(MAKE) --no-print-directory typecheck >"$$types" 2>&1) & typecheck=$$!; \
	$(VENV)/bin/pytest -q -p no:cacheprovider --collect-only >/dev/null; \
	($(MAKE) --no-print-directory test-unpatched-moto >"$$unpatched" 2>&1) & store=$$!; \
	$(VENV)/bin/pytest -q -n 4 --dist loadgroup --durations=25; tests=$$?; \
	wait $$store; stores=$$?; echo "make test-unpatched-moto:"; cat "$$unpatched"; \
	wait $$typecheck; typed=$$?; echo "make typecheck:"; cat "$$types"; rm -f "$$types" "$$unpatched"; \
	[ $$tests -eq 0 ] && [ $$stores -eq 0 ] && [ $$typed -eq 0 ]

# Store tests carry the marker `moto_store` (tests/unit and tests/integration only, so infra modules are not imported).
test-unpatched-moto: $(VENV)/.synced  ## the store tests once more, against moto without possync's patches
	POSSYNC_TEST_UNPATCHED_MOTO=1 $(VENV)/bin/pytest -q -p no:cacheprovider -n 2 --dist loadgroup -m moto_store \
		tests/unit tests/integration

bench: $(VENV)/.synced  ## benchmarks that print figures (pull throughput, memory, AWS requests)
	$(PY) -m bench.pull
	$(PY) -m bench.rules
	$(PY) -m bench.signups
	$(PY) -m bench.pos_sync

clean:  ## remove generated files (keeps the venv)
	rm -rf cdk.out .local .pytest_cache .mypy_cache .ruff_cache
