# herald: the two commands.
#   make demo   installs what is missing, builds, runs examples/quickstart
#   make test   installs, builds (plain, ASan+UBSan, TSan, clang with
#               -Wthread-safety), runs clang-tidy, starts PostgreSQL and Kafka
#               on loopback, runs every test, stops the servers
# Other targets: build, build-clang, tidy, unit, bench, format, clean,
# servers-up, servers-down.

SHELL := /bin/bash
JOBS ?= $(shell nproc)
BUILD ?= build
CMAKE_COMMON := -G Ninja -DCMAKE_CXX_COMPILER_LAUNCHER=$(shell command -v ccache >/dev/null 2>&1 && echo ccache)
SERVERS_DIR := $(abspath $(BUILD))/servers
export HERALD_SERVERS_DIR := $(SERVERS_DIR)

.PHONY: demo test deps deps-servers deps-test build build-asan build-tsan build-clang tidy unit bench format clean \
        servers-up servers-down

demo: deps
	@cmake -S . -B $(BUILD)/demo $(CMAKE_COMMON) -DCMAKE_BUILD_TYPE=RelWithDebInfo \
	  -DHERALD_BUILD_TESTING=OFF -DHERALD_BUILD_BENCHMARKS=OFF -DHERALD_WITH_KAFKA=OFF \
	  -DHERALD_WITH_POSTGRES=OFF >/dev/null
	@echo "== building the quickstart"
	@cmake --build $(BUILD)/demo -j $(JOBS) --target quickstart
	@echo "== running examples/quickstart"
	@$(BUILD)/demo/examples/quickstart

deps:
	@scripts/install-deps.sh

deps-servers:
	@scripts/install-deps.sh --servers

deps-test:
	@scripts/install-deps.sh --servers --fuzz --interop

build: deps
	cmake -S . -B $(BUILD)/release $(CMAKE_COMMON) -DCMAKE_BUILD_TYPE=RelWithDebInfo
	cmake --build $(BUILD)/release -j $(JOBS)

build-asan:
	cmake -S . -B $(BUILD)/asan $(CMAKE_COMMON) -DCMAKE_BUILD_TYPE=Debug -DHERALD_SANITIZE=address,undefined \
	  -DHERALD_BUILD_BENCHMARKS=OFF -DHERALD_BUILD_EXAMPLES=OFF -DHERALD_BUILD_TOOLS=OFF
	cmake --build $(BUILD)/asan -j $(JOBS)

# Only the concurrency tests run under TSan, Kafka's mock-cluster tests among
# them (.ci/tsan.supp covers librdkafka's uninstrumented internals). libpq's
# tests need the server, so PostgreSQL stays out of this build.
build-tsan:
	cmake -S . -B $(BUILD)/tsan $(CMAKE_COMMON) -DCMAKE_BUILD_TYPE=RelWithDebInfo -DHERALD_SANITIZE=thread \
	  -DHERALD_WITH_KAFKA=ON -DHERALD_WITH_POSTGRES=OFF \
	  -DHERALD_BUILD_BENCHMARKS=OFF -DHERALD_BUILD_EXAMPLES=OFF -DHERALD_BUILD_TOOLS=OFF
	cmake --build $(BUILD)/tsan -j $(JOBS)

# Every component, tests, tools, examples and benchmarks built with clang:
# -Wthread-safety -Werror checks the lock annotations. Build only.
build-clang: deps
	cmake -S . -B $(BUILD)/clang $(CMAKE_COMMON) -DCMAKE_C_COMPILER=clang -DCMAKE_CXX_COMPILER=clang++ \
	  -DCMAKE_BUILD_TYPE=Debug -DCMAKE_CXX_FLAGS_DEBUG="-O0 -g0"
	cmake --build $(BUILD)/clang -j $(JOBS)

# clang-tidy over every .cc file with .clang-tidy's checks, using the clang
# build's compile database (configured here if needed; nothing is compiled).
tidy: deps
	@test -f $(BUILD)/clang/compile_commands.json || \
	  cmake -S . -B $(BUILD)/clang $(CMAKE_COMMON) -DCMAKE_C_COMPILER=clang -DCMAKE_CXX_COMPILER=clang++ \
	    -DCMAKE_BUILD_TYPE=Debug -DCMAKE_CXX_FLAGS_DEBUG="-O0 -g0" >/dev/null
	scripts/clang-tidy.py $(BUILD)/clang $(JOBS)

unit: build
	ctest --test-dir $(BUILD)/release -L unit --output-on-failure -j $(JOBS)

servers-up: deps-servers
	@scripts/servers-up.sh

servers-down:
	@scripts/servers-down.sh || true

# Every test, against real servers; servers are stopped whatever happens.
test: deps-test
	@scripts/run-tests.sh

bench: build
	@scripts/install-deps.sh --servers --bench
	@scripts/run-benchmarks.sh

# Long fuzzing runs of every libFuzzer target (clang); `make test` runs short ones.
.PHONY: fuzz
FUZZ_SECONDS ?= 600
fuzz:
	@scripts/install-deps.sh --fuzz
	@scripts/run-fuzz.sh $(FUZZ_SECONDS)

format:
	@git ls-files '*.h' '*.cc' | xargs clang-format -i

clean:
	rm -rf $(BUILD)
