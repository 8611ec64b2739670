# Loci - the two commands are `make run` and `make test`; the rest wrap CMake.
#   make          build build/loci
#   make run      install deps, build (and the web UI when missing or stale),
#                 migrate, serve on http://localhost:8080
#   make test     install deps, build normal + ASan/UBSan, start PostgreSQL and
#                 Redis, run every test, stop the services
#   make lint     banned calls and formatting
#   make bench    benchmarks (not part of the tests)
#   make deps     install missing system packages
#   make web      build the web UI into web/dist when missing or stale

JOBS ?= $(shell nproc 2>/dev/null || echo 2)
BUILD ?= build
BUILD_ASAN ?= build-asan

.PHONY: all build asan run test lint deps bench clean format web

all: build

$(BUILD)/Makefile $(BUILD)/CMakeCache.txt:
	cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null

build: $(BUILD)/CMakeCache.txt
	cmake --build $(BUILD) -j $(JOBS)

$(BUILD_ASAN)/CMakeCache.txt:
	cmake -S . -B $(BUILD_ASAN) -DCMAKE_BUILD_TYPE=Debug -DLOCI_SANITIZE=ON >/dev/null

asan: $(BUILD_ASAN)/CMakeCache.txt
	cmake --build $(BUILD_ASAN) -j $(JOBS)

deps:
	scripts/install-deps

web:
	scripts/build-web

run: deps
	$(MAKE) build
	scripts/build-web
	$(BUILD)/loci migrate
	$(BUILD)/loci serve

test:
	scripts/test

lint:
	scripts/lint

format:
	clang-format -i $$(find src tests/unit -name '*.[ch]')

bench:
	scripts/install-deps bench
	$(MAKE) build
	bench/http/run

clean:
	rm -rf $(BUILD) $(BUILD_ASAN)
