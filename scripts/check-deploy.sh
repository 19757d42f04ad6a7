#!/usr/bin/env bash
# Checks the Docker deployment files as far as a machine without a Docker engine can (part of
# `make test`):
#   1. docker-compose.yml validates with Debian's docker-compose 1.29.2 (installed with apt-get when
#      missing), with and without the observability profile, and uses no unset variable; HAProxy
#      accepts the processors' balancer configuration, compose's and the local one;
#   2. deploy/check (a Go program with Prometheus' PromQL parser, in its own module): every image
#      pinned (compose and Dockerfile FROM lines), healthchecks behind every depends_on condition,
#      the services' environment (0.0.0.0 listeners, hosts that are compose services, PgBouncer
#      exec mode), Prometheus scraping every service, Grafana's provisioning, and the dashboards
#      (JSON, layout, datasource uids, every PromQL expression parsed);
#   3. the Dockerfile's build step: its `RUN go build` line, with its build-stage ENV, run here for
#      every service compose builds, into a temporary directory.
# Services whose cmd/<name> has no Go files yet and dashboard metrics no code defines yet are
# warnings; CHECK_DEPLOY_STRICT=1 makes them failures.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
STRICT=${CHECK_DEPLOY_STRICT:-0}

log() { printf 'check-deploy: %s\n' "$*" >&2; }
die() { printf '\ncheck-deploy: FAILED: %s\n\n' "$*" >&2; exit 1; }

TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT

# --- 1. compose validation ---------------------------------------------------------------------

PATH=$PATH:/usr/sbin
# need command: install the Debian package of the same name when the command is missing.
need() {
	command -v "$1" >/dev/null && return 0
	scripts/apt-install.sh "$1" || die "could not install $1 with apt-get"
}
need docker-compose

compose() { docker-compose -f docker-compose.yml "$@"; }

# config -q validates against the schema (1.29.2 rejects keys it does not know, e.g. develop:);
# profiles are honoured by 1.29.2, and every service, whatever its profile, is validated.
for profile in "" observability ha; do
	args=()
	[[ -n $profile ]] && args=(--profile "$profile")
	if ! compose "${args[@]}" config -q 2>"$TMP/stderr"; then
		cat "$TMP/stderr" >&2
		die "docker-compose${args[*]:+ ${args[*]}} config -q rejects docker-compose.yml"
	fi
	if grep -i "variable is not set" "$TMP/stderr" >&2; then
		die "docker-compose.yml uses a variable with no default: write \${VAR:-default}"
	fi
done
compose --profile observability --profile ha config >"$TMP/compose.yml" 2>/dev/null
log "docker-compose $(docker-compose version --short 2>/dev/null || echo '?'): config valid (default, observability and ha profiles)"

# The processors' balancer: compose's configuration, and the local one `PROCESSORS=N make up`
# derives from it, both as HAProxy itself reads them.
need haproxy
haproxy -c -q -f deploy/haproxy/haproxy.cfg || die "haproxy rejects deploy/haproxy/haproxy.cfg"
scripts/stack.sh haproxy-config 127.0.0.1:8000 127.0.0.1:8100 127.0.0.1:8200 >"$TMP/haproxy-local.cfg"
haproxy -c -q -f "$TMP/haproxy-local.cfg" || die "haproxy rejects the local configuration (scripts/stack.sh haproxy-config)"
grep -q 'deploy/haproxy/haproxy.cfg:/usr/local/etc/haproxy/haproxy.cfg' docker-compose.yml ||
	die "compose's balancer does not mount deploy/haproxy/haproxy.cfg"
# The router to the PostgreSQL primary (the ha profile; `HA=1 make up` derives its local one from
# it, which `make failover` runs). Its nodes' names resolve only inside compose: HAProxy warns.
haproxy -c -q -f deploy/haproxy/pg-primary.cfg 2>/dev/null || die "haproxy rejects deploy/haproxy/pg-primary.cfg"
log "haproxy $(haproxy -v | awk 'NR==1 { print $3 }'): compose's and the local balancer configurations valid, and the primary's router"

# --- 2. images, wiring, Prometheus, Grafana, dashboards -----------------------------------------

check_args=(-root "$ROOT" -compose "$TMP/compose.yml")
((STRICT)) && check_args+=(-strict-metrics -strict-services)
if ! (cd deploy/check && go run . "${check_args[@]}"); then
	die "deploy/check found problems (above)"
fi
log "images pinned, dependencies, environment, Prometheus, Grafana and dashboards checked"

# --- 3. the Dockerfile's go build, for every service -----------------------------------------------

# The build stage: from the first FROM to the next one.
stage=$(awk '/^FROM /{n++} n==1' Dockerfile)
build_line=$(grep -E '^RUN go build ' <<<"$stage" || true)
[[ $(wc -l <<<"$build_line") == 1 && -n $build_line ]] ||
	die "Dockerfile: want exactly one 'RUN go build ...' line in the build stage"
build_cmd=${build_line#RUN }
[[ $build_cmd == *'-o /out/'* ]] || die "Dockerfile: the go build line must write under /out/"
for flag in -trimpath '-ldflags="-s -w"'; do
	[[ $build_cmd == *"$flag"* ]] || die "Dockerfile: the go build line lacks $flag"
done
build_env=()
while read -r line; do
	for kv in ${line#ENV }; do
		[[ $kv =~ ^[A-Z_][A-Z0-9_]*=[^\"\'\$]*$ ]] || die "Dockerfile: ENV $kv: use plain KEY=value pairs (the check runs them)"
		build_env+=("$kv")
	done
done < <(grep -E '^ENV ' <<<"$stage")
[[ " ${build_env[*]} " == *" CGO_ENABLED=0 "* ]] || die "Dockerfile: the build stage must set ENV CGO_ENABLED=0"

# SERVICE of every compose service built from the Dockerfile.
mapfile -t services < <(awk '/^    build:/{b=1} b && /^        SERVICE:/{print $2; b=0} /^  [a-z]/{b=0}' "$TMP/compose.yml" | sort -u)
((${#services[@]} > 0)) || die "no compose service builds from the Dockerfile"

built=0
for svc in "${services[@]}"; do
	if ! compgen -G "cmd/$svc/*.go" >/dev/null; then
		((STRICT)) && die "compose builds ./cmd/$svc, which has no Go files"
		log "WARNING: skipping $svc: ./cmd/$svc has no Go files yet"
		continue
	fi
	out=$TMP/out/$svc/
	mkdir -p "$out"
	cmd=${build_cmd//\/out\//$out}
	if ! env "${build_env[@]}" SERVICE="$svc" sh -c "$cmd"; then
		die "the Dockerfile's build step fails for $svc: $cmd"
	fi
	bin=$(find "$out" -type f | head -n 1)
	[[ -n $bin ]] || die "the build step for $svc wrote nothing under /out/"
	info=$(go version -m "$bin")
	grep -q $'\tbuild\tCGO_ENABLED=0' <<<"$info" || die "$svc: the binary was not built with CGO_ENABLED=0"
	grep -q $'\tbuild\t-trimpath=true' <<<"$info" || die "$svc: the binary was not built with -trimpath"
	log "built $svc as the Dockerfile does ($(du -h "$bin" | cut -f1))"
	built=$((built + 1))
done
((built > 0)) || die "no service could be built"
log "ok"
