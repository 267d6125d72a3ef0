# director: keepalived-compatible LVS/IPVS director.  `make test` installs what it needs.
SHELL := /bin/bash
VENV  := .venv
PY    := $(VENV)/bin/python
STAMP := $(VENV)/.installed
DEBS  := keepalived nginx ipvsadm iproute2 qemu-system-x86 linux-image-amd64 busybox-static \
         procps kmod

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

bench: install
	$(PY) bench/parse.py

demo: install
	@echo "The demo (two directors, three nginx real servers, failover) comes with the"
	@echo "VRRP and IPVS issues. Today director checks configurations:"
	$(VENV)/bin/director -t -f tests/fixtures/seeds/001_lvs_nat_master.conf && echo "config OK"
	$(VENV)/bin/director -d -f tests/fixtures/seeds/001_lvs_nat_master.conf | head -40

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .ruff_cache
