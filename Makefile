# LineSight: two commands do everything on a fresh machine.
#   make run    set up what is missing, build, start the demo
#   make test   set up what is missing, vet, run all tests with -race
SHELL := /bin/bash
GO ?= go
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS := -X main.version=$(VERSION)
BIN := bin
SETUP_STAMP := .cache/setup.done
# Tests: the race detector always; matprofile makes gocv count every Mat so
# tests can assert none leaks.
TEST_FLAGS ?= -race -tags matprofile -timeout 20m
PY := /usr/bin/python3

.PHONY: all run demo test build setup lint bench clean help check-setup

all: build

help:
	@echo "make run     set up, build and start the demo (Ctrl-C stops it)"
	@echo "make test    set up, vet and run every test with -race"
	@echo "make build   build bin/linesight and bin/linesight-fleet (pure Go)"
	@echo "make lint    gofmt, go vet, staticcheck"
	@echo "make bench   run the benchmarks (scripts/bench)"
	@echo "make setup   install what is missing (scripts/setup.sh)"

# Setup runs when the stamp is missing or older than what it installs from.
$(SETUP_STAMP): scripts/setup.sh go.mod go.sum
	@bash scripts/setup.sh

setup:
	@bash scripts/setup.sh

build: $(SETUP_STAMP)
	$(GO) build -ldflags "$(LDFLAGS)" -o $(BIN)/linesight ./agent/cmd/linesight
	CGO_ENABLED=0 $(GO) build -ldflags "$(LDFLAGS)" -o $(BIN)/linesight-fleet ./sync/cmd/linesight-fleet

run: build
	$(BIN)/linesight demo

demo: run

test: $(SETUP_STAMP)
	$(GO) vet ./...
	CGO_ENABLED=0 $(GO) build -o /dev/null ./sync/cmd/linesight-fleet
	$(GO) test $(TEST_FLAGS) ./...

STATICCHECK := $(shell $(GO) env GOPATH)/bin/staticcheck
$(STATICCHECK):
	$(GO) install honnef.co/go/tools/cmd/staticcheck@v0.8.2

lint: $(SETUP_STAMP) $(STATICCHECK)
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt would change:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...
	$(STATICCHECK) ./...

bench: $(SETUP_STAMP)
	bash scripts/bench

clean:
	rm -rf $(BIN)
