# director: keepalived-compatible LVS/IPVS director.  `make test` installs what it needs.
SHELL := /bin/bash
VENV  := .venv
PY    := $(VENV)/bin/python
STAMP := $(VENV)/.installed
DEBS  := keepalived nginx ipvsadm iproute2 qemu-system-x86 linux-image-amd64 busybox-static \
         procps kmod iputils-ping dnsmasq-base openssl

.PHONY: install debs venv test unit netns kernel lint bench demo clean

install: debs venv

# Debian packages: the real peers and the VM kernel the tests use.
debs:
	@missing=$$(for p in $(DEBS); do dpkg -s $$p >/dev/null 2>&1 || echo $$p; done); \
	if [ -n "$$missing" ]; then \
	  echo "installing Debian packages: $$missing"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing; \
	fi

venv: $(STAMP)

$(STAMP): setup.cfg pyproject.toml
	python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[test]' virtme-ng
	touch $(STAMP)

test: install lint unit netns kernel

unit: venv
	$(PY) -m pytest -q tests/unit

netns: venv
	$(PY) -m pytest -q -rs tests/netns

kernel: install
	tools/run-kernel-tests tests/kernel

lint: venv
	$(VENV)/bin/ruff check .

# host benchmarks, then the IPVS one inside the VM; one report in bench/RESULTS.md
bench: install
	@{ echo "# director benchmarks ($$(date -u +%F), $$(nproc) CPUs)"; echo; \
	   $(PY) bench/parse.py; echo; \
	   $(PY) bench/failover.py --stable $(BENCH_STABLE); echo; \
	   $(PY) bench/checkers.py; echo; \
	   tools/run-in-vm python bench/ipvs_sync.py --vs $(BENCH_VS) --rs 10; echo; \
	   tools/run-in-vm python bench/checkers.py --compare 200; \
	 } | grep -v '^booting' | tee bench/RESULTS.md

BENCH_VS ?= 200
BENCH_STABLE ?= 120

demo: install
	@echo "== director -t on the LVS-NAT seed (scenario 001)"
	$(VENV)/bin/director -t -f tests/fixtures/seeds/001_lvs_nat_master.conf && echo "config OK"
	@echo "== its virtual server, as the model has it"
	$(VENV)/bin/director -d -f tests/fixtures/seeds/001_lvs_nat_master.conf \
	  | $(PY) -c 'import json,sys; print(json.dumps(json.load(sys.stdin)["virtual_servers"], indent=1)[:1500])'
	@echo "== the LVS side programming it (dry run: no IPVS on this kernel), then stopping"
	timeout -s TERM 5 $(VENV)/bin/director -C -n --dry-run \
	  -f tests/fixtures/seeds/001_lvs_nat_master.conf || true
	@echo "(the full two-director failover demo comes with the VRRP issue)"

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .ruff_cache
