# Herald: `make run` starts the daemon on the example config; `make test` runs every test.
# Both install whatever Debian 12 packages are missing first (as root, or through sudo).

PACKAGES := g++ cmake ninja-build ccache pkg-config make git curl sqlite3 \
	libboost-dev libcurl4-openssl-dev libkainjow-mustache-dev libsqlite3-dev libspdlog-dev \
	libfmt-dev nlohmann-json3-dev libssl-dev libtomlplusplus-dev libcli11-dev libsystemd-dev \
	libhowardhinnant-date-dev tzdata libgtest-dev libgmock-dev python3 python3-aiosmtpd \
	chromium libnats-dev nats-server prometheus-alertmanager wrk \
	clang libclang-rt-14-dev

# ccache: paths relative to the checkout, so another clone of the tree (CI's) hits the cache.
export CCACHE_BASEDIR := $(CURDIR)
export CCACHE_NOHASHDIR := true

BUILD      ?= build
ASAN_BUILD ?= build-asan
FUZZ_BUILD ?= build-fuzz
# Seconds each fuzz target runs in `make fuzz` (and so in `make test`).
FUZZ_TIME  ?= 15
JOBS       ?= $(shell nproc)
CMAKE_ARGS ?=

.PHONY: all deps build build-asan fuzz-build fuzz run test test-fast format clean

all: build

deps:
	@missing=$$(for p in $(PACKAGES); do \
	    dpkg-query -W -f='$${Status}\n' $$p 2>/dev/null | grep -q '^install ok installed' || echo $$p; \
	  done); \
	if [ -n "$$missing" ]; then \
	  echo "Installing missing packages:" $$missing; \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq --no-install-recommends $$missing; \
	fi
	@# The console's browser test needs node and npm (playwright-core comes from the npm
	@# registry through `npm ci`). A Node already on the machine is kept as it is; only when
	@# there is no npm at all is Debian's installed.
	@if ! command -v npm >/dev/null 2>&1; then \
	  echo "Installing Debian's npm for the browser tests"; \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq --no-install-recommends npm; \
	fi

$(BUILD)/build.ninja:
	cmake -S . -B $(BUILD) -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo $(CMAKE_ARGS)

$(ASAN_BUILD)/build.ninja:
	cmake -S . -B $(ASAN_BUILD) -G Ninja -DCMAKE_BUILD_TYPE=Debug -DHERALD_SANITIZE=ON $(CMAKE_ARGS)

# The fuzz build (fuzz/README.md): clang with libFuzzer, ASan and UBSan; only the fuzz targets
# and the modules they need. libclang-rt-14-dev holds libFuzzer's runtime (-fsanitize=fuzzer).
$(FUZZ_BUILD)/build.ninja:
	cmake -S . -B $(FUZZ_BUILD) -G Ninja -DCMAKE_CXX_COMPILER=clang++ -DHERALD_FUZZ=ON $(CMAKE_ARGS)

build: deps $(BUILD)/build.ninja
	cmake --build $(BUILD) -j $(JOBS)

build-asan: deps $(ASAN_BUILD)/build.ninja
	cmake --build $(ASAN_BUILD) -j $(JOBS)

fuzz-build: deps $(FUZZ_BUILD)/build.ninja
	cmake --build $(FUZZ_BUILD) -j $(JOBS)

# Each fuzz target over its seeds and regressions for FUZZ_TIME seconds (`make fuzz
# FUZZ_TIME=3600` for an hour each; one target by hand: fuzz/run.sh TARGET SECONDS).
fuzz: fuzz-build
	cd $(FUZZ_BUILD) && FUZZ_TIME=$(FUZZ_TIME) ctest --output-on-failure -j $(JOBS) \
	  --timeout $$(( $(FUZZ_TIME) + 300 ))

# Only the daemon: a new user need not wait for the test binaries.
run: deps $(BUILD)/build.ninja
	cmake --build $(BUILD) -j $(JOBS) --target herald
	tools/run-demo.sh $(BUILD)/herald

# Every test twice: a normal build, then under AddressSanitizer and UndefinedBehaviorSanitizer;
# then each fuzz target for FUZZ_TIME seconds.
test: build build-asan
	cd $(BUILD) && ctest --output-on-failure -j $(JOBS) --timeout 300
	cd $(ASAN_BUILD) && ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 \
	  UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
	  ctest --output-on-failure -j $(JOBS) --timeout 600
	$(MAKE) fuzz

# The normal build's tests only, for a quick loop while developing.
test-fast: build
	cd $(BUILD) && ctest --output-on-failure -j $(JOBS) --timeout 300

format:
	git ls-files '*.cpp' '*.hpp' | xargs clang-format -i

clean:
	rm -rf $(BUILD) $(ASAN_BUILD) $(FUZZ_BUILD)
