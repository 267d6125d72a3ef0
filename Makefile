# director: keepalived-compatible LVS/IPVS director.  `make test` installs what it needs.
SHELL := /bin/bash
VENV  := .venv
PY    := $(VENV)/bin/python
STAMP := $(VENV)/.installed
# Debian's python3 (built with PGO/LTO) runs director 15-25% faster than a locally built
# interpreter, and is what a Debian director host runs; any python3 >= 3.11 works.
BASEPY := $(shell [ -x /usr/bin/python3 ] && echo /usr/bin/python3 || echo python3)
DEBS  := keepalived nginx exabgp bird2 ipvsadm iproute2 qemu-system-x86 linux-image-amd64 busybox-static \
         procps kmod iputils-ping dnsmasq-base openssl nftables libnftables1 \
         chromium chromium-driver python3-venv

.PHONY: install debs venv launcher bundle test unit netns kernel lint bench demo demo-scaleout clean

install: debs venv

# Debian packages: the real peers and the VM kernel the tests use.
debs:
	@missing=$$(for p in $(DEBS); do dpkg -s $$p >/dev/null 2>&1 || echo $$p; done); \
	if [ -n "$$missing" ]; then \
	  echo "installing Debian packages: $$missing"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing; \
	fi

venv: $(STAMP) launcher bundle

$(STAMP): setup.cfg pyproject.toml
	$(BASEPY) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[test]' virtme-ng --config-settings editable_mode=compat
	touch $(STAMP)

# `director` without `site` (director/launcher.py): written over pip's console script
# after each install, and before the bundle (which records bin/'s modification time).
launcher: $(VENV)/.launcher
$(VENV)/.launcher: $(STAMP) director/launcher.py
	@$(PY) -m director.launcher
	@touch $@

# The start-up module bundle (director/bundle.py): the code of what a start imports, in
# one file next to director's .pyc files; written again when a source changes (a module
# whose source changed since is imported the normal way meanwhile, never from it).
SOURCES := $(shell find conf daemonlib vrrp checkers director -name '*.py' 2>/dev/null)
bundle: $(VENV)/.bundle
$(VENV)/.bundle: $(STAMP) $(VENV)/.launcher $(SOURCES)
	@$(PY) -m director.bundle_build
	@touch $@

test: install lint unit netns kernel

unit: venv
	$(PY) -m pytest -q tests/unit

netns: venv
	$(PY) -m pytest -q -rs tests/netns

kernel: install
	tools/run-kernel-tests tests/kernel

lint: venv
	$(VENV)/bin/ruff check .
	$(VENV)/bin/mypy

# host benchmarks, then those needing IPVS inside the VM; one report in bench/RESULTS.md
# (director beside keepalived, ratio, target, pass/FAIL per row; a verdict on top)
bench: install
	@$(PY) -m compileall -q conf daemonlib vrrp checkers director  # the VM reads these .pyc
	@{ echo "# director benchmarks ($$(date -u +%F), $$(nproc) CPUs)"; echo; \
	   $(PY) bench/parse.py; echo; \
	   $(PY) bench/failover.py --stable $(BENCH_STABLE); echo; \
	   $(PY) bench/checkers.py; echo; \
	   tools/run-in-vm python bench/ipvs_sync.py --sizes $(BENCH_IPVS); echo; \
	   $(PY) bench/reload.py; echo; \
	   $(PY) bench/ipvs_read.py; echo; \
	   tools/run-in-vm python bench/checkers.py --compare 200; echo; \
	   tools/run-in-vm python bench/memory.py --vs 1000 --rs 10 --seconds $(BENCH_MEM_S); echo; \
	   tools/run-in-vm python bench/scaleout.py; \
	 } | grep -v '^booting' | tee bench/RESULTS.md
	$(PY) bench/summary.py bench/RESULTS.md

BENCH_IPVS ?= 200x10,1000x10
BENCH_STABLE ?= 120
BENCH_MEM_S ?= 60

# scenario 001 for real: two directors, three nginx, a client, the master killed.
# IPVS is needed: in the VM when this kernel has none (the host here has none).
demo: install
	@if [ -e /proc/net/ip_vs ] || modprobe -q ip_vs 2>/dev/null; then \
	  $(PY) tools/demo.py; \
	else \
	  echo "this kernel has no IPVS: running the demo in the VM (about 2 minutes)"; \
	  tools/run-in-vm python tools/demo.py; \
	fi

# issue 14: three active directors behind a BGP/ECMP router (BIRD2), DR + mh, with a
# timeline: spread, a pool lost, a node killed and a director stopped under 300 downloads
demo-scaleout: install
	@if [ -e /proc/net/ip_vs ] || modprobe -q ip_vs 2>/dev/null; then \
	  $(PY) tools/demo_scaleout.py; \
	else \
	  echo "this kernel has no IPVS: running the demo in the VM (5-10 minutes)"; \
	  tools/run-in-vm python tools/demo_scaleout.py; \
	fi

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .ruff_cache
