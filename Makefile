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
	@echo "make model-tiles   train the real-data model (README, Models)"
	@echo "make bench-train   time train.py's malloc settings side by side"

# Setup runs when the stamp is missing or older than what it installs from.
$(SETUP_STAMP): scripts/setup.sh scripts/train/backbone.sh go.mod go.sum
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

# --- Models (issue 5) ---------------------------------------------------------
# make model        rebuild the built-in default model (agent/builtin/model)
#                   from synthetic tiles with fixed seeds, then evaluate it on
#                   a fresh synthetic set of another seed
# make model-tiles DATA=../shared/datasets/magnetic-tile OUT=DIR
#                   train on the real magnetic-tile images (exposure group
#                   exp5 held out entirely), set the thresholds again with
#                   linesight model calibrate on the validation split (the Go
#                   engine's scores), then evaluate fp32 and int8 with
#                   linesight model eval on the stratified held-out split
#                   and on exp5
# make model-tiles-parts DATA=... OUT=DIR
#                   the same recipe on a split that keeps each tile's photos
#                   (one per exposure) together: every held-out part is one
#                   the networks never saw, as on a line (README, Models)
MODEL_WORK ?= .cache/model
MODEL_TRAIN_FLAGS ?= --size 128 --width 16 --epochs 12 --samples-per-epoch 2048 --seed 1
DATA ?= ../shared/datasets/magnetic-tile
OUT ?= $(MODEL_WORK)/tiles
# the measured choice (README, Models): two mask-supervised networks at
# 160 px, one a MobileNetV2 trunk started from ImageNet-trained weights
# (first 3 layers kept, learning rate 1e-3), one learnt from scratch
# (SegTileNet width 16); classes drawn in proportion to the square root of
# their counts, the loss unweighted (session 16), escapes weighted, synthetic
# chipped edges on a tenth of the good images, synthetic pits, thin dark
# lines and patches of changed texture on 15 %, 4-flip TTA, channels-last
# training; a photo at least twice as long as wide also scored in square
# windows of its short side (overlap >= 25 %), the worst view deciding;
# --threads 2 as measured (another thread count, or a CPU whose torch
# kernels differ, AVX2 against AVX-512, gives other, equally seeded,
# weights; the manifest records both)
BACKBONE := .cache/backbone/mobilenet_v2
TILES_TRAIN_FLAGS ?= --size 160 --width 16 --epochs 24 --samples-per-epoch 2048 --seed 1 --tta \
	--arch mnv2seg+segnet --pretrained $(BACKBONE) --freeze 3 --pretrained-lr 1e-3 \
	--resize stretch --balance sqrt --defect-weight 1 --edge-chips 0.1 --synth-defects 0.15 --channels-last \
	--windows 0.25 --window-min-aspect 2 --ensemble 2 --threads 2
# a tile's photos are named expE_num_N with N a few dozen apart: N within
# 600 of the previous photo and E rising is one tile (240 tiles)
TILES_PARTS_FLAGS ?= --group-exposures 600

.PHONY: model model-tiles model-tiles-parts bench-train

model: build
	rm -rf $(MODEL_WORK)/synth-train $(MODEL_WORK)/synth-fresh $(MODEL_WORK)/builtin
	$(BIN)/linesight synth --out $(MODEL_WORK)/synth-train --n 3000 --seed 101 --defect-rate 0.5
	LINESIGHT_CREATED=2025-01-01T00:00:00Z nice -n 10 $(PY) scripts/train/train.py --data $(MODEL_WORK)/synth-train \
		--out $(MODEL_WORK)/builtin --name builtin-synthetic-tiles --version 1.0.0 --no-links \
		--dataset-name "linesight synth --n 3000 --seed 101 --defect-rate 0.5" $(MODEL_TRAIN_FLAGS)
	rm -rf agent/builtin/model && mkdir -p agent/builtin/model/int8
	cp $(MODEL_WORK)/builtin/manifest.json $(MODEL_WORK)/builtin/model.onnx agent/builtin/model/
	cp $(MODEL_WORK)/builtin/int8/manifest.json $(MODEL_WORK)/builtin/int8/model.onnx agent/builtin/model/int8/
	$(BIN)/linesight synth --out $(MODEL_WORK)/synth-fresh --n 2000 --seed 202
	$(GO) build -ldflags "$(LDFLAGS)" -o $(BIN)/linesight ./agent/cmd/linesight
	$(BIN)/linesight model eval --quiet --model agent/builtin/model --data $(MODEL_WORK)/synth-fresh
	$(BIN)/linesight model eval --quiet --model agent/builtin/model/int8 --data $(MODEL_WORK)/synth-fresh

# train-tiles EXTRA-FLAGS: the real-data recipe; the thresholds set again
# from the Go engine's own scores on the validation split (train.py's come
# from PyTorch, for int8 from a simulation of the quantised graph); then
# model eval of both packages on the held-out folders the training wrote
define train-tiles
	@test -d "$(DATA)" || { echo "DATA=$(DATA) is not a folder (want DATA=../shared/datasets/magnetic-tile)"; exit 2; }
	@bash scripts/train/backbone.sh $(BACKBONE)
	nice -n 10 $(PY) scripts/train/train.py --data $(DATA) --out $(OUT) --name magnetic-tiles --holdout exp5_ $(TILES_TRAIN_FLAGS) $(1)
	@# the two packages side by side (the Go engine scores on one core of two),
	@# each one's report printed whole once both are done
	@pids=""; for k in fp32 int8; do pkg=$(OUT); [ $$k = int8 ] && pkg=$(OUT)/int8; test -d $$pkg || continue; \
		{ $(BIN)/linesight model calibrate --quiet --model $$pkg --data $(OUT)/heldout/val --split val && \
		  for d in test exp5; do $(BIN)/linesight model eval --quiet --model $$pkg --data $(OUT)/heldout/$$d || exit 1; done; \
		} > $(OUT)/eval-$$k.log 2>&1 & pids="$$pids $$!"; done; \
	fail=0; for p in $$pids; do wait $$p || fail=1; done; \
	for k in fp32 int8; do test -f $(OUT)/eval-$$k.log && cat $(OUT)/eval-$$k.log; done; exit $$fail
endef

model-tiles: build
	$(call train-tiles,)

model-tiles-parts: build
	$(call train-tiles,$(TILES_PARTS_FLAGS))

# bench-train: train.py's malloc settings side by side on the recipe, cut to
# one short epoch (scripts/train/bench.sh; about 4 minutes on 2 cores)
bench-train: $(SETUP_STAMP)
	@bash scripts/train/backbone.sh $(BACKBONE)
	bash scripts/train/bench.sh $(DATA) $(MODEL_WORK)/bench $(TILES_TRAIN_FLAGS)
