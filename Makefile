# Two entry points for a fresh machine (see README.md):
#   make run   - install deps, build, serve config/default.json
#   make test  - install deps, build Release and Debug+ASan/UBSan, run ctest on both
#   make fuzz  - build the libFuzzer targets with clang, run each FUZZ_SECONDS
JOBS ?= $(shell nproc)
CONFIG ?= config/default.json

.PHONY: all deps build run test test-release test-asan fuzz bench clean

all: build

deps:
	@sh scripts/deps.sh

build: deps
	@cmake -S . -B build -DCMAKE_BUILD_TYPE=Release >/dev/null
	@cmake --build build -j$(JOBS)

run: build
	./build/llmpin serve --config $(CONFIG)

test: test-release test-asan

test-release: build
	cd build && ctest --output-on-failure -j$(JOBS)

test-asan: deps
	@cmake -S . -B build-asan -DCMAKE_BUILD_TYPE=Debug -DLLMPIN_SANITIZE=ON >/dev/null
	@cmake --build build-asan -j$(JOBS)
	cd build-asan && ASAN_OPTIONS=detect_leaks=1 ctest --output-on-failure -j$(JOBS) -LE nosan

# every libFuzzer target FUZZ_SECONDS (default 30) under ASan/UBSan
FUZZ_SECONDS ?= 30
fuzz:
	sh tests/fuzz/run.sh $(FUZZ_SECONDS)

clean:
	rm -rf build build-asan build-fuzz
