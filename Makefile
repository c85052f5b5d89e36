# wago — see README.md.
#   make run     the all-in-one server on :1337 (SQLite under ./data)
#   make test    installs and starts Redis, PostgreSQL and DynamoDB Local, then every test with -race
#   make bench   the benchmarks of the issues' targets (needs what `make test` installs)

GO        ?= go
BIN       ?= bin
SERVICES  ?= $(CURDIR)/.services
GOFLAGS_BUILD := -trimpath -ldflags='-s -w'
export CGO_ENABLED ?= 0

.PHONY: run build bootstrap test test-go services services-stop bench lint fmt vet

run:
	$(GO) run .

build:
	$(GO) build $(GOFLAGS_BUILD) -o $(BIN)/wago .

# The AWS Lambda binary: the same program, without the RPC mode of aws-lambda-go.
bootstrap:
	GOOS=linux GOARCH=$${GOARCH:-arm64} $(GO) build -tags lambda.norpc $(GOFLAGS_BUILD) -o $(BIN)/bootstrap .

# services starts Redis, PostgreSQL and DynamoDB Local (installing them if
# needed) and writes their addresses to $(SERVICES)/env, with the path of
# Chromium (for the dashboard's browser test; installed if needed).
services:
	@mkdir -p $(SERVICES)
	@WAGO_SERVICES_DIR=$(SERVICES) .ci/redis 6390 > $(SERVICES)/out.redis
	@WAGO_SERVICES_DIR=$(SERVICES) .ci/postgres 5440 > $(SERVICES)/out.postgres
	@WAGO_SERVICES_DIR=$(SERVICES) .ci/dynamodb-local 8007 > $(SERVICES)/out.dynamo
	@.ci/chromium > $(SERVICES)/out.chromium
	@{ tail -n 1 $(SERVICES)/out.redis; tail -n 1 $(SERVICES)/out.postgres; tail -n 1 $(SERVICES)/out.dynamo; tail -n 1 $(SERVICES)/out.chromium; } > $(SERVICES)/env
	@grep -q '^WAGO_TEST_REDIS_URL=' $(SERVICES)/env && grep -q '^WAGO_TEST_POSTGRES_URL=' $(SERVICES)/env && grep -q '^WAGO_TEST_DYNAMODB_ENDPOINT=' $(SERVICES)/env
	@cat $(SERVICES)/env

services-stop:
	-@WAGO_SERVICES_DIR=$(SERVICES) .ci/redis stop 6390
	-@WAGO_SERVICES_DIR=$(SERVICES) .ci/postgres stop 5440
	-@WAGO_SERVICES_DIR=$(SERVICES) .ci/dynamodb-local stop

test: services
	set -a && . $(SERVICES)/env && set +a && \
	AWS_ACCESS_KEY_ID=local AWS_SECRET_ACCESS_KEY=local AWS_REGION=us-east-1 \
	CGO_ENABLED=1 $(GO) test -race -count=1 -timeout 30m ./...

# test-go runs the Go tests against services that are already up.
test-go:
	CGO_ENABLED=1 $(GO) test -race -count=1 -timeout 30m ./...

# bench runs the wrk benchmarks of the embedded server and the API as
# ratios to the reference server of .ci/benchref, loaded alternately
# (RUNS=5 DURATION=6s by default), and the Go benchmarks (the hot routes
# in process first), the send path's last: /send/text latency
# at an open-loop 200 msgs/s and the closed-loop maximum, embedded and
# distributed (WAGO_BENCH_SEND_DURATION=10s), and the RSS growth of 50 MiB
# of images; then the key-store reads and writes per session restore on
# SQLite, PostgreSQL and DynamoDB; then a fleet of 3 connectors (3,000
# sessions; WAGO_BENCH_FLEET_SESSIONS): kill -9 failover time and idle
# Redis commands per session per minute.
bench: services
	set -a && . $(SERVICES)/env && set +a && .ci/bench
	set -a && . $(SERVICES)/env && set +a && AWS_ACCESS_KEY_ID=local AWS_SECRET_ACCESS_KEY=local AWS_REGION=us-east-1 $(GO) test -run '^$$' -bench HotRoutes -benchmem -count 3 .
	set -a && . $(SERVICES)/env && set +a && $(GO) test -run '^$$' -bench . -benchtime 2s ./shared/...
	set -a && . $(SERVICES)/env && set +a && $(GO) test -run '^$$' -bench 'LambdaColdStart' -benchtime 10x ./e2e/
	set -a && . $(SERVICES)/env && set +a && $(GO) test -run '^$$' -bench 'Sessions' -benchtime 1x -timeout 60m ./e2e/
	set -a && . $(SERVICES)/env && set +a && $(GO) test -run '^$$' -bench '^BenchmarkSendText$$' -benchtime 1x -timeout 15m ./e2e/
	set -a && . $(SERVICES)/env && set +a && $(GO) test -run '^$$' -bench '^BenchmarkSendMediaRSS$$' -benchtime 1x -timeout 10m ./e2e/
	set -a && . $(SERVICES)/env && set +a && $(GO) test -run '^$$' -bench '^BenchmarkWebhookKill9$$' -benchtime 1x -count 3 -timeout 10m ./e2e/
	set -a && . $(SERVICES)/env && set +a && $(GO) test -run '^$$' -bench '^BenchmarkKeyStoreRestore$$' -benchtime 1x -count 3 -timeout 10m ./e2e/
	set -a && . $(SERVICES)/env && set +a && $(GO) test -run '^$$' -bench '^BenchmarkFleetFailover$$' -benchtime 1x -timeout 40m ./e2e/

fmt:
	gofmt -w .

vet:
	@test -z "$$(gofmt -l . | tee /dev/stderr)"
	$(GO) vet ./...

lint: vet

# --- AWS SAM (template.yaml) -------------------------------------------------
# `sam build` runs `make build-<LogicalId>` for each function with
# BuildMethod makefile and ARTIFACTS_DIR set. The three functions are the
# same binary (the route decides what each serves), so they share one recipe.
SAM_FUNCTIONS := AdminFunction SessionsFunction RestFunction
LAMBDA_BUILD  := GOOS=linux GOARCH=arm64 CGO_ENABLED=0 $(GO) build -tags lambda.norpc -trimpath -ldflags='-s -w'

.PHONY: $(addprefix build-,$(SAM_FUNCTIONS)) lint-template

$(addprefix build-,$(SAM_FUNCTIONS)):
	@test -n "$(ARTIFACTS_DIR)" || { echo "$@: ARTIFACTS_DIR is not set (sam build sets it)" >&2; exit 2; }
	$(LAMBDA_BUILD) -o $(ARTIFACTS_DIR)/bootstrap .

# lint-template checks template.yaml with cfn-lint (errors and warnings).
lint-template:
	cfn-lint template.yaml
