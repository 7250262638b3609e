# Thin front end over CMake: the README's commands. Everything real lives in CMakeLists.txt.
BUILD     ?= build
SAN_BUILD ?= build-sanitize
JOBS      ?= $(shell nproc)
CONFIG    ?= configs/bastion.yaml

.PHONY: all deps build run test test-sanitize certs bench clean

all: build

deps:
	./scripts/install-deps.sh

$(BUILD)/CMakeCache.txt:
	cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=RelWithDebInfo

build: $(BUILD)/CMakeCache.txt
	cmake --build $(BUILD) -j $(JOBS)

# Dev PKI, then the dev authentication secrets beside it (API keys, passwords, token signing
# key; plaintext in certs/dev/dev-credentials.txt). Both are idempotent.
certs:
	./certs/gen-dev-certs.sh certs/dev
	./scripts/gen-dev-secrets.sh certs/dev

# One command from a fresh machine to a running server on the embedded cluster.
run: deps
	$(MAKE) build
	$(MAKE) certs
	./scripts/run-dev.sh $(BUILD) $(CONFIG)

test: deps
	$(MAKE) build
	cd $(BUILD) && ctest --output-on-failure -j $(JOBS)

test-sanitize: deps
	cmake -S . -B $(SAN_BUILD) -DCMAKE_BUILD_TYPE=Debug -DBASTION_SANITIZE=ON
	cmake --build $(SAN_BUILD) -j $(JOBS)
	cd $(SAN_BUILD) && ctest --output-on-failure -j $(JOBS)

# Benchmarks in a Release build; each quotes medians and a peer measured in the same run.
BENCH_BUILD ?= build-bench
bench: deps
	cmake -S . -B $(BENCH_BUILD) -DCMAKE_BUILD_TYPE=Release
	cmake --build $(BENCH_BUILD) -j $(JOBS) --target rbac_bench audit_bench auth_bench bastiond_bench
	$(BENCH_BUILD)/bin/rbac_bench
	$(BENCH_BUILD)/bin/audit_bench
	$(BENCH_BUILD)/bin/auth_bench
	$(BENCH_BUILD)/bin/bastiond_bench

clean:
	rm -rf $(BUILD) $(SAN_BUILD) $(BENCH_BUILD)
