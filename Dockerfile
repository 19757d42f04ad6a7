# One image per service: docker build --build-arg SERVICE=processor . builds ./cmd/processor.
# docker-compose.yml builds processor, consumer, notifier and loadtest from this file.
#
# scripts/check-deploy.sh (run by `make test`) runs the `RUN go build` line below, with the ENV
# lines of the build stage, for every service: keep that step on one line.

FROM golang:1.26.8-alpine AS build
WORKDIR /src
ENV CGO_ENABLED=0 GOOS=linux GOFLAGS=-buildvcs=false
# Modules first: this layer is reused until go.mod or go.sum change, by every service.
COPY go.mod go.sum ./
RUN go mod download
COPY . .
ARG SERVICE
RUN test -n "$SERVICE" && test -d "./cmd/$SERVICE" || { echo "build with --build-arg SERVICE=<a directory of cmd/>" >&2; exit 1; }
RUN go build -trimpath -ldflags="-s -w" -o /out/service "./cmd/${SERVICE}"

# Alpine rather than distroless: it has a tagged release to pin, CA certificates (webhooks over
# HTTPS) and busybox wget for the compose healthchecks, for ~8 MB.
FROM alpine:3.24.1
RUN addgroup -S -g 10001 txn && adduser -S -D -H -u 10001 -G txn -s /sbin/nologin txn
COPY --from=build /out/service /usr/local/bin/service
USER 10001:10001
ENTRYPOINT ["/usr/local/bin/service"]
