# Two commands on a fresh Debian machine: `make demo` and `make test`.
# Each sets up what it needs: system tools via apt-get (only when missing), .venv, the project.
PY      ?= python3
VENV    := .venv
BIN     := $(VENV)/bin
STAMP   := $(VENV)/.installed
# System tools the tests drive as real peers and checkers (tshark reads our captures; curl, ab,
# wrk, chromium, socat, hping3, nmap talk to synack inside test namespaces; nft drops packets there).
APT_PKGS := tshark tcpdump iproute2 nftables socat curl hping3 apache2-utils wrk chromium iperf3 nmap
# Commands that must exist; apt-get runs only if one is missing.
APT_CMDS := tshark tcpdump ip nft socat curl hping3 ab wrk chromium iperf3 nmap

.PHONY: all setup sysdeps demo test test-fast bench gallery clean

all: setup

sysdeps:
	@missing=""; for c in $(APT_CMDS); do command -v $$c >/dev/null 2>&1 || missing="$$missing $$c"; done; \
	if [ -n "$$missing" ]; then \
	  echo "installing system tools (missing:$$missing)"; \
	  if [ "$$(id -u)" = 0 ]; then SUDO=""; else SUDO="sudo"; fi; \
	  $$SUDO apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq $(APT_PKGS) >/dev/null; \
	fi

$(STAMP): pyproject.toml
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[test]'
	@touch $(STAMP)

setup: sysdeps $(STAMP)

demo: setup
	$(BIN)/synack demo

test: setup
	$(BIN)/python -m pytest -q -p no:cacheprovider

bench: setup
	$(BIN)/python bench/run.py

gallery: setup
	$(BIN)/python -m synack.scenarios.gallery --out docs/gallery

clean:
	rm -rf $(VENV) build dist src/*.egg-info .hypothesis
