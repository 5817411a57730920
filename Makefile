# nobounce — the targets a newcomer guesses. See README.md.
SHELL := /bin/bash
GO        ?= go
BIN       ?= bin/nobounce
FUZZTIME  ?= 30s

.PHONY: all build test test-unit test-integration demo bench bench-milter fuzz lint install-deps clean bench-compare soak soak-short

all: build

build:
	$(GO) build -o $(BIN) ./cmd/nobounce

# Everything: unit tests, then the integration suite with real clamd,
# Postfix and Sendmail on loopback (installs missing Debian packages first).
test: test-unit test-integration

test-unit:
	$(GO) vet ./...
	$(GO) test -count=1 ./...

test-integration: install-deps
	$(GO) test -tags integration -count=1 -timeout 20m ./integration/

install-deps:
	bash testbed/install.sh

# Start clamd + Postfix + nobounce on loopback, send a clean and an EICAR
# message, show what happened, stop everything.
demo:
	bash testbed/demo.sh

bench:
	$(GO) test -run '^$$' -bench . -benchmem ./...

# nobounce-bench against nobounce with a real clamd (see testbed/bench.sh).
bench-milter:
	bash testbed/bench.sh

# nobounce beside clamav-milter, spamass-milter, rspamd's milter proxy and
# go-milter's NoOpMilter, alternating runs, ratios and a chart (docs/).
bench-compare:
	bash testbed/compare.sh

# Soak and fault suite with real Postfix and clamd (soak/, build tag soak);
# soak-short is the CI-sized version (under 3 minutes).
soak:
	bash testbed/soak.sh

soak-short:
	SOAK_SHORT=1 bash testbed/soak.sh

fuzz:
	@for pkg in $$($(GO) list ./...); do \
	  for f in $$($(GO) test -list '^Fuzz' $$pkg | grep '^Fuzz'); do \
	    echo "== $$pkg $$f"; $(GO) test -run '^$$' -fuzz "^$$f$$" -fuzztime $(FUZZTIME) -fuzzminimizetime 2s $$pkg || exit 1; \
	  done; \
	done

STATICCHECK = $(shell $(GO) env GOPATH)/bin/staticcheck

lint: $(STATICCHECK)
	@test -z "$$(gofmt -l .)" || { echo "gofmt wants to change:"; gofmt -l .; exit 1; }
	$(GO) vet ./...
	$(GO) vet -tags integration ./integration/
	$(GO) vet -tags soak ./soak/...
	$(STATICCHECK) ./...

$(STATICCHECK):
	$(GO) install honnef.co/go/tools/cmd/staticcheck@v0.8.2

clean:
	rm -rf bin
