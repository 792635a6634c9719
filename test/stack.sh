#!/usr/bin/env bash
# Runs the local stack: OPA with opa-policies/, the development authorization
# server (cmd/devidp, DEVELOPMENT ONLY) and authgate, configured from
# .env.example (or $ENV_FILE). `stack.sh run` stays in the foreground until
# Ctrl-C and stops all three.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${BIN:-$PWD/bin}
export ENV_FILE=${ENV_FILE:-.env.example}

OPA_ADDR=${OPA_ADDR:-127.0.0.1:8181}
IDP_ADDR=${DEVIDP_ADDR:-127.0.0.1:9000}
ADMIN=${ADMIN_ADDR:-127.0.0.1:9086}
METRICS=${METRICS_ADDR:-127.0.0.1:9090}
TRAFFIC=${LISTEN_ADDR:-127.0.0.1:8086}

pids=()
cleanup() {
  trap - INT TERM EXIT
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
}
trap cleanup INT TERM EXIT

wait_for() { # url name
  for _ in $(seq 1 300); do
    if curl -fsS -o /dev/null "$1" 2>/dev/null; then return 0; fi
    sleep 0.1
  done
  echo "stack: $2 did not become ready at $1" >&2
  exit 1
}

in_use() { (echo > "/dev/tcp/${1%:*}/${1##*:}") 2>/dev/null; }
for addr in "$OPA_ADDR" "$IDP_ADDR" "$TRAFFIC" "$ADMIN" "$METRICS"; do
  if in_use "$addr"; then
    echo "stack: $addr is already in use (is a stack already running? stop it first)" >&2
    exit 1
  fi
done

"$BIN/opa" run --server --addr "$OPA_ADDR" --log-level error opa-policies &
pids+=($!)
DEVIDP_ADDR=$IDP_ADDR "$BIN/devidp" ${DEVIDP_ARGS:-} &
pids+=($!)
wait_for "http://$OPA_ADDR/health" OPA
wait_for "http://$IDP_ADDR/oauth2/default/.well-known/oauth-authorization-server" devidp
"$BIN/authgate" &
pids+=($!)
wait_for "http://$ADMIN/readyz" authgate

cat <<EOT

authgate is up: traffic on http://$TRAFFIC, admin on http://$ADMIN, metrics on http://$METRICS
(OPA on http://$OPA_ADDR, development authorization server on http://$IDP_ADDR)

  TOKEN=\$(curl -s -u demo:demo-secret -d grant_type=client_credentials -d scope=read_sayhello \\
    http://$IDP_ADDR/oauth2/default/v1/token | sed -E 's/.*"access_token":"([^"]+)".*/\1/')
  curl -i -H "Authorization: Bearer \$TOKEN" http://$TRAFFIC/sayhello    # 200
  curl -i -H "Authorization: Bearer \$TOKEN" http://$TRAFFIC/saysecret   # 403
  curl -i http://$TRAFFIC/sayhello                                      # 401
  curl -s http://$ADMIN/readyz
  curl -s http://$METRICS/metrics | grep ^authgate_decisions

Ctrl-C stops all three.
EOT
case "${1:-run}" in
  run) wait -n "${pids[@]}" ;;  # returns when any of them exits (or on Ctrl-C)
  *) echo "usage: stack.sh run" >&2; exit 2 ;;
esac
