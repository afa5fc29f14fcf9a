# The commands a newcomer needs: `make run` and `make test`. See README.md.
SHELL := /bin/bash
.DEFAULT_GOAL := help

VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
AGENCIES ?= 5
BETS ?= 16000
COMPOSE_FILE ?= docker-compose-dev.yaml
STATUS_PORT ?= 8080

# First interpreter >= 3.13: pyenv's shims honour .python-version, then the usual names.
find_python = for c in python3.13 python3.14 python3; do \
	  if command -v $$c >/dev/null 2>&1 && $$c -c 'import sys; sys.exit(sys.version_info < (3, 13))' 2>/dev/null; then \
	    command -v $$c; exit 0; fi; done; exit 1

.PHONY: certs restore-drill status help install test unit integration lint format run data db up down logs docker-image docker-compose-up docker-compose-down docker-compose-logs bench bench-agencies bench-scale bench-growth chaos clean

help:
	@echo "make run      start the server and $(AGENCIES) agency clients locally (no Docker)"
	@echo "make test     run the whole test suite"
	@echo "make lint     ruff check + ruff format --check"
	@echo "make certs    a local CA and server certificate in .data/tls (make run/up use TLS; TLS=0 make run: plaintext)"
	@echo "make restore-drill   restore .data-replica to a scratch folder, check it against .data"
	@echo "make data     generate .data/agency-<i>.csv (AGENCIES=$(AGENCIES) BETS=$(BETS))"
	@echo "make db       SQL shell on .data/bets.db"
	@echo "make up/down/logs   the same system in containers (course names: make docker-compose-up ...)"
	@echo "make status  the running server's /status.json as a table (STATUS_PORT=$(STATUS_PORT))"
	@echo "make chaos   random faults for CHAOS_SECONDS (60), verified each round"
	@echo "make bench   the real pipeline timed (BENCH_RUNS=5, DATA=<dir> for other files)"
	@echo "make bench-agencies   1,000 agencies at once from one process (AGENCIES, BETS)"
	@echo "make bench-scale   the winners query on a 10-million-bet database"
	@echo "make bench-growth  ingest rate per tenth of 1 x 1,000,000 and 10 x 1,000,000 bets (GROWTH=…)"

install: $(STAMP)

$(STAMP): pyproject.toml scripts/requirements.py
	@py=$$($(find_python)) || { echo "error: Python >= 3.13 not found; install it (e.g. 'pyenv install 3.13' or the python3.13 package) and retry" >&2; exit 1; }; \
	  if [ ! -x $(PY) ] || ! $(PY) -c 'import sys; sys.exit(sys.version_info < (3, 13))' 2>/dev/null; then \
	    rm -rf $(VENV); echo "creating $(VENV) with $$py"; $$py -m venv $(VENV) || exit 1; fi
	$(PY) -m pip install --quiet --disable-pip-version-check $$($(PY) scripts/requirements.py --dev)
	@touch $(STAMP)

test: install
	$(PY) -m pytest -q --durations=10

unit: install
	$(PY) -m pytest -q tests/unit

integration: install
	$(PY) -m pytest -q tests/integration

lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

format: install
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

STORAGE_DIR ?= .data
db: install
	@test -f $(STORAGE_DIR)/bets.db || { echo "no database at $(STORAGE_DIR)/bets.db yet: run 'make run' first" >&2; exit 1; }
	@if command -v sqlite3 >/dev/null 2>&1; then sqlite3 -header -column $(STORAGE_DIR)/bets.db; \
	  else $(PY) -m sqlite3 $(STORAGE_DIR)/bets.db; fi

DATA ?= .data
# TLS=0: the lottery port in clear (make run); TLS=1: benches run plaintext and TLS.
TLS ?=
REPLICA ?=
run: install
	@$(PY) -m scripts.run_local --agencies $(AGENCIES) --bets $(BETS) --data $(DATA) $(if $(filter 0,$(TLS)),--plaintext,)

certs: install
	@$(PY) -m scripts.certs --out .data/tls

# Restore the replica into a scratch folder, check it, compare it with the live lottery.
restore-drill: install
	@$(PY) -m scripts.restore_drill --dir .data --replica .data-replica

data: install
	$(PY) -m scripts.gen_data --agencies $(AGENCIES) --bets $(BETS) --out $(DATA)

# docker compose (v2) when available, else docker-compose 1.29.
COMPOSE = $(shell docker compose version >/dev/null 2>&1 && echo "docker compose" || echo docker-compose)

up: install
	@for i in $$(seq 1 $(AGENCIES)); do test -f .data/agency-$$i.csv || { $(PY) -m scripts.gen_data --agencies $(AGENCIES) --bets $(BETS) --out .data; break; }; done
	@$(PY) -m scripts.keys --agencies $(AGENCIES) --out .data/keys
	@$(PY) -m scripts.certs --out .data/tls
	@$(PY) scripts/compose.py .compose.tmp $(AGENCIES) --keys --tls --replica --keep-id $(COMPOSE_FILE) --status-port $(STATUS_PORT) >/dev/null && \
	  if cmp -s .compose.tmp $(COMPOSE_FILE); then rm .compose.tmp; echo "$(COMPOSE_FILE) unchanged: continuing its lottery"; \
	  else mv .compose.tmp $(COMPOSE_FILE); echo "wrote $(COMPOSE_FILE) for $(AGENCIES) agencies: a new lottery"; fi
	@mkdir -p .data/rejects .data-replica
	$(COMPOSE) -f $(COMPOSE_FILE) up -d --build
	@echo "status page: http://127.0.0.1:$(STATUS_PORT)/   (make status: the same as a table)"

down:
	$(COMPOSE) -f $(COMPOSE_FILE) stop -t 3
	$(COMPOSE) -f $(COMPOSE_FILE) down --remove-orphans

logs:
	$(COMPOSE) -f $(COMPOSE_FILE) logs -f

# The course's target names, as aliases.
docker-image:
	docker build -f ./server/Dockerfile -t server:latest .
	docker build -f ./client/Dockerfile -t client:latest .

docker-compose-up: up

docker-compose-down: down

docker-compose-logs: logs

BENCH_RUNS ?= 5
bench: install
	TLS=$(TLS) REPLICA=$(REPLICA) BENCH_RUNS=$(BENCH_RUNS) $(if $(filter-out .data,$(DATA)),DATA=$(DATA)) $(PY) -m scripts.bench

# AGENCIES and BETS default to a national round here (1,000 x 80), not make run's 5 x 16,000.
bench-agencies: install
	TLS=$(TLS) AGENCIES=$(if $(filter command line environment,$(origin AGENCIES)),$(AGENCIES),1000) \
	  BETS=$(if $(filter command line environment,$(origin BETS)),$(BETS),80) \
	  $(PY) -m scripts.bench_agencies

bench-scale: install
	$(PY) -m scripts.bench_scale

# GROWTH=<agencies>x<bets>,… (default 1x1000000,10x1000000): ingest rate as the lottery grows.
bench-growth: install
	$(if $(GROWTH),GROWTH=$(GROWTH)) $(PY) -m scripts.bench_growth

CHAOS_SECONDS ?= 60
chaos: install
	CHAOS_SECONDS=$(CHAOS_SECONDS) $(PY) -m scripts.chaos

status: install
	@$(PY) -m scripts.status --url http://127.0.0.1:$(STATUS_PORT)

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache .hypothesis
