# syntax=docker/dockerfile:1
# The wago connector container: the whatsmeow sockets, commanded over Redis
# Streams, token rows in DynamoDB, the whatsmeow key store on /data (or a
# postgres:// WAGO_WHATSMEOW_DB shared by all connectors).
#
#   docker build -t wago .
#   docker run -v wago-data:/data -e WAGO_REDIS_URL=redis://... \
#       -e WAGO_DYNAMODB_TABLE=... -e AWS_REGION=... wago
#
# The same image serves the other roles: `docker run ... wago api` or `serve`.

# Build on the build machine's platform and cross-compile (pure Go, no cgo).
FROM --platform=$BUILDPLATFORM golang:1.26 AS build
ARG TARGETOS
ARG TARGETARCH
WORKDIR /src
COPY go.mod go.sum ./
RUN --mount=type=cache,target=/go/pkg/mod go mod download
# Only the sources of the binary: no ./data, no .services, no local state.
COPY *.go ./
COPY connector/ connector/
COPY functions/ functions/
COPY shared/ shared/
RUN --mount=type=cache,target=/go/pkg/mod --mount=type=cache,target=/root/.cache/go-build \
    CGO_ENABLED=0 GOOS=$TARGETOS GOARCH=$TARGETARCH \
    go build -trimpath -ldflags='-s -w' -o /out/wago . \
    && mkdir -p /out/data

# distroless/static: CA certificates and tzdata, no shell; runs as nonroot
# (65532:65532).
FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/wago /wago
COPY --from=build --chown=65532:65532 /out/data /data
USER 65532:65532
ENV WAGO_DATA_DIR=/data
VOLUME ["/data"]
ENTRYPOINT ["/wago"]
CMD ["connector"]
