# Pulpo's build. On a fresh Debian machine, `make run` and `make test` install
# what they need (PostgreSQL server binaries; clang, lld, wasi-libc and clang's
# wasm32 builtins only when the C test plugin exists) and then do their job.
#
#   make build     bin/pulpo
#   make plugins   plugins/build/<name>.wasm for every plugins/<name> with a main package
#   make run       deps, plugins, build, then ./bin/pulpo serve $(ARGS) (embedded PostgreSQL under ./var)
#   make test      deps, plugins, go vet ./..., go test ./... (unit and integration; prints the
#                  OCI conformance summary, reports kept in a temporary directory)
#   make fuzz      every go test -fuzz target for FUZZTIME (20000 executions) each; make test runs it last
#   make bench     go test -bench on every package that has benchmarks
#   make clean     remove bin/ and plugins/build/ (keeps ./var, the data of `make run`)

SHELL       := bash
.SHELLFLAGS := -eu -o pipefail -c

GO          ?= go
BIN         := bin/pulpo
PLUGIN_OUT  := plugins/build
ARGS        ?=
TESTFLAGS   ?=
BENCH       ?= .
BENCHTIME   ?= 1s
BENCHFLAGS  ?=

# sudo only when not root.
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: all build plugins run test fuzz bench clean deps deps-postgres deps-cplugin deps-s3

all: build plugins

build:
	$(GO) build -o $(BIN) ./host/cmd/pulpo

# Every directory plugins/<name> whose package is main is a plugin. Directories
# without Go files, or whose package is not main, are skipped, so this works
# before any plugin exists.
plugins:
	@mkdir -p $(PLUGIN_OUT); built=0; \
	for dir in plugins/*/; do \
		[ -d "$$dir" ] || continue; \
		name=$$(basename "$$dir"); \
		case "$$name" in build|testdata) continue ;; esac; \
		pkg=$$(GOOS=wasip1 GOARCH=wasm $(GO) list -f '{{.Name}}' "./plugins/$$name" 2>/dev/null || true); \
		if [ "$$pkg" != main ]; then echo "plugins: skip plugins/$$name (no main package)"; continue; fi; \
		echo "plugins: $(PLUGIN_OUT)/$$name.wasm"; \
		GOOS=wasip1 GOARCH=wasm $(GO) build -buildmode=c-shared -o "$(PLUGIN_OUT)/$$name.wasm" "./plugins/$$name"; \
		built=$$((built + 1)); \
	done; \
	echo "plugins: $$built built"

run: deps plugins build
	./$(BIN) serve $(ARGS)

# CI is passed through the environment: under CI=true, tests that need
# PostgreSQL fail instead of skipping when none can be had (host/db/dbtest).
test: deps deps-s3 plugins
	@vet=ok; $(GO) vet ./... || vet=FAILED; \
	log=$$(mktemp); rc=0; oci=$$(mktemp -d -t pulpo-oci-conformance.XXXXXX); \
	PULPO_CONFORMANCE_DIR="$$oci" $(GO) test -p 2 -timeout 10m $(TESTFLAGS) ./... 2>&1 | tee "$$log" || rc=$$?; \
	ok=$$(grep -c '^ok ' "$$log" || true); \
	failed=$$(grep -cE '^FAIL\s+\S+' "$$log" || true); \
	none=$$(grep -c '^?' "$$log" || true); \
	rm -f "$$log"; \
	if [ -f "$$oci/summary.txt" ]; then cat "$$oci/summary.txt"; else rmdir "$$oci" 2>/dev/null || true; fi; \
	echo "make test: vet $$vet; go test: $$ok packages ok, $$failed failed, $$none without tests$$( [ $$rc = 0 ] && [ $$vet = ok ] && echo ' -- PASS' || echo ' -- FAIL')"; \
	[ $$rc = 0 ] && [ $$vet = ok ]
	@$(MAKE) --no-print-directory fuzz

# Every func FuzzXxx in a _test.go file, run for FUZZTIME each (go test -fuzz takes one
# target of one package per run). A failure leaves its input under the package's
# testdata/fuzz/, where plain go test replays it from then on. The budget is a count of
# executions, not a duration: Go 1.26's fuzz coordinator can report a spurious "context
# deadline exceeded" when a duration ends mid-execution (go.dev/issue/75804, fixed in
# Go 1.27), which failed make test once on a loaded machine.
FUZZTIME    ?= 20000x

fuzz:
	@pass=0; fail=0; failed=""; start=$$(date +%s); log=$$(mktemp); \
	while IFS=: read -r file name; do \
		pkg=./$$(dirname "$$file"); \
		if $(GO) test -run '^$$' -fuzz "^$$name\$$" -fuzztime $(FUZZTIME) "$$pkg" >"$$log" 2>&1; then \
			pass=$$((pass + 1)); \
		else \
			fail=$$((fail + 1)); failed="$$failed $$pkg:$$name"; \
			echo "fuzz: $$pkg $$name FAILED:"; tail -n 30 "$$log"; \
		fi; \
	done < <(grep -rhoE --include='*_test.go' --exclude-dir=testdata -H '^func Fuzz[A-Za-z0-9_]*' host abi sdk plugins integration 2>/dev/null | sed 's/func //' | sort); \
	rm -f "$$log"; \
	echo "make fuzz: $$pass targets passed, $$fail failed ($(FUZZTIME) each, $$(( $$(date +%s) - start ))s)$$( [ $$fail = 0 ] && echo ' -- PASS' || echo " -- FAIL:$$failed")"; \
	[ $$fail = 0 ]

# Packages with at least one Benchmark function, found by grep.
BENCH_PKGS = $(sort $(addprefix ./,$(dir $(shell grep -rlE --include='*_test.go' --exclude-dir=testdata '^func Benchmark' $(wildcard host abi sdk plugins integration) /dev/null))))

bench: deps
	@pkgs="$(BENCH_PKGS)"; \
	if [ -z "$$pkgs" ]; then echo "bench: no benchmarks"; exit 0; fi; \
	$(GO) test -run '^$$' -bench '$(BENCH)' -benchtime=$(BENCHTIME) -benchmem $(BENCHFLAGS) $$pkgs

clean:
	rm -rf bin $(PLUGIN_OUT)

deps: deps-postgres deps-cplugin

# The S3-compatible server of the storage tests (host/storage/s3/s3test), built once
# per machine into the user cache: minutes the first time, nothing afterwards. Only
# make test needs it; make run does not.
deps-s3:
	@$(GO) run ./host/storage/s3/s3test/prebuild

# PostgreSQL server binaries (initdb, pg_ctl, postgres) for the embedded
# cluster and for tests, looked for where host/pgcluster looks.
deps-postgres:
	@if { command -v initdb && command -v pg_ctl && command -v postgres; } >/dev/null 2>&1 \
		|| { d=$$(pg_config --bindir 2>/dev/null) && [ -x "$$d/initdb" ] && [ -x "$$d/pg_ctl" ] && [ -x "$$d/postgres" ]; } \
		|| ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then \
		echo "deps: PostgreSQL server binaries found"; \
	else \
		echo "deps: installing PostgreSQL"; \
		$(SUDO) apt-get update && $(SUDO) apt-get install -y postgresql; \
	fi

# clang, lld (wasm-ld), wasi-libc and clang's wasm32 builtins (libclang_rt, packaged
# apart for each clang version), needed only by the C test plugin.
deps-cplugin:
	@if [ ! -d plugins/testdata/cplugin ]; then exit 0; fi; \
	rt=$$(clang --target=wasm32-wasi -print-libgcc-file-name 2>/dev/null); \
	if command -v wasm-ld >/dev/null && [ -e /usr/lib/wasm32-wasi/libc.a ] && [ -n "$$rt" ] && [ -e "$$rt" ]; then \
		echo "deps: clang, wasm-ld, wasi-libc and the wasm32 builtins found"; \
	else \
		echo "deps: installing clang, lld, wasi-libc and the wasm32 builtins"; \
		$(SUDO) apt-get update && $(SUDO) apt-get install -y clang lld wasi-libc && \
		v=$$(clang -dumpversion | cut -d. -f1) && \
		$(SUDO) apt-get install -y libclang-rt-$$v-dev-wasm32; \
	fi
