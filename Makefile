# Moat's tooling. `make test` is the test command CI runs (.ci/run).
GO      ?= go
PKGS    := ./...
FUZZTIME ?= 30s

.PHONY: all build test test-short lint check fuzz bench gen fmt vet htmx

all: build

VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
COMMIT  ?= $(shell git rev-parse HEAD 2>/dev/null || echo unknown)

build:
	$(GO) build -ldflags "-X main.version=$(VERSION) -X main.commit=$(COMMIT)" -o moat ./cmd/moat

# The whole test suite, with the race detector, after the linter. PostgreSQL
# tests start a throwaway server when initdb/pg_ctl are installed and skip
# (visibly) otherwise; MOAT_REQUIRE_POSTGRES=1 turns the skip into a failure.
test: lint
	$(GO) test -race -count=1 -timeout 15m $(PKGS)

# A quick loop: no race detector, and the child-process and long durability
# tests left out (-short). make test runs everything.
test-short:
	$(GO) test -short -count=1 $(PKGS)

# golangci-lint v2 with .golangci.yml (it runs go vet's analyzers too).
GOLANGCI_LINT ?= $(shell command -v golangci-lint 2>/dev/null || echo $$($(GO) env GOPATH)/bin/golangci-lint)
lint:
	@test -x "$(GOLANGCI_LINT)" || { echo "golangci-lint is not installed: go install github.com/golangci/golangci-lint/v2/cmd/golangci-lint@v2.15.0"; exit 1; }
	$(GOLANGCI_LINT) run $(PKGS)

# Static checks: formatting, vet, generated files up to date.
check: vet
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(MAKE) gen
	git diff --exit-code -- README.md

vet:
	$(GO) vet $(PKGS)

fmt:
	gofmt -w $$(git ls-files '*.go')

# Regenerate the configuration reference in README.md from the schema.
gen:
	$(GO) run ./cmd/moat config reference --write README.md

# Run every fuzz target for FUZZTIME each (FUZZ, a regular expression,
# picks targets by "package Target"; FUZZPARALLEL, when set, is the number
# of fuzzing workers). A target that fails does not stop the others: go
# test writes its input under the package's testdata/fuzz/, where it
# becomes a seed that every later `go test` runs; the list of failures
# comes at the end, and the exit status says whether there was one.
FUZZ ?= .
fuzz:
	@failed=""; \
	for pkg in $$($(GO) list $(PKGS)); do \
	  for f in $$($(GO) test -list '^Fuzz' $$pkg | grep '^Fuzz'); do \
	    echo "$$pkg $$f" | grep -Eq -- '$(FUZZ)' || continue; \
	    echo "== $$pkg $$f ($$(date -u +%H:%M:%S))"; \
	    $(GO) test -run '^$$' -fuzz "^$$f$$" -fuzztime $(FUZZTIME) $(if $(FUZZPARALLEL),-parallel $(FUZZPARALLEL)) $$pkg || failed="$$failed $$pkg.$$f"; \
	  done; \
	done; \
	if [ -n "$$failed" ]; then echo "fuzz targets that failed:$$failed"; exit 1; fi

# Go benchmarks; the side-by-side comparisons with nginx and Knot are in bench/.
bench:
	$(GO) test -run '^$$' -bench . -benchmem $(PKGS)

# Refresh the vendored htmx from the npm registry: HTMX_VERSION's package,
# checked against the integrity npm publishes, then its checksum recorded
# (internal/web tests compare the embedded file with it).
HTMX_VERSION ?= $(shell cat internal/web/static/htmx.version)
htmx:
	@set -e; tmp=$$(mktemp -d); trap 'rm -rf $$tmp' EXIT; \
	cd $$tmp && npm pack --silent htmx.org@$(HTMX_VERSION) >/dev/null; \
	want=$$(npm view htmx.org@$(HTMX_VERSION) dist.integrity); \
	got="sha512-$$(openssl dgst -sha512 -binary $$tmp/htmx.org-$(HTMX_VERSION).tgz | base64 -w0)"; \
	test "$$want" = "$$got" || { echo "htmx tarball integrity $$got, npm says $$want"; exit 1; }; \
	tar xzf htmx.org-$(HTMX_VERSION).tgz; cd - >/dev/null; \
	cp $$tmp/package/dist/htmx.min.js internal/web/static/htmx.min.js; \
	echo $(HTMX_VERSION) > internal/web/static/htmx.version; \
	cd internal/web/static && sha256sum htmx.min.js > htmx.min.js.sha256 && cat htmx.min.js.sha256
