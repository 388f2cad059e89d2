#!/usr/bin/env bash
# Performs the Dockerfile's steps without a Docker engine (none runs in CI):
# a production-only install of dist/ in a clean folder laid out like the
# image (the config at etc/mailgate/mailgate.yaml, state in data/), with the
# ENV lines of the Dockerfile itself, run as a non-root user, then checks what
# the image really does:
#   - it serves /readyz, listening on the Dockerfile's MAILGATE_LISTEN host;
#   - its state lands in MAILGATE_DATA_DIR (not next to the config), written
#     by the non-root user, with the admin token readable there;
#   - `config check` shows the environment overrides;
#   - the HEALTHCHECK script (healthcheck.mjs) follows the listen port;
#   - a data dir the user may not write is refused in plain words.
# Catches a runtime dependency that sits in devDependencies, or a file the image lacks.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
port=${PORT:-18725}
work=$(mktemp -d)
# Never `kill 0` (an unset pid would signal this whole process group, .ci/run included).
trap 'if [ -n "${pid:-}" ]; then kill "$pid" 2>/dev/null || true; fi; rm -rf "$work"' EXIT
fail() { echo "image-check: $*"; [ -f "$work/serve.log" ] && cat "$work/serve.log"; exit 1; }
[ -d "$root/dist" ] || (cd "$root" && npm run build >/dev/null)

# The image's ENV, from the Dockerfile (not repeated here).
envof() { sed -n "s/^[[:space:]]*\(ENV \)\{0,1\}$1=\([^[:space:]\\\\]*\).*/\2/p" "$root/Dockerfile" | head -1; }
image_listen=$(envof MAILGATE_LISTEN)
image_data=$(envof MAILGATE_DATA_DIR)
[ -n "$image_listen" ] && [ -n "$image_data" ] || fail "the Dockerfile sets no MAILGATE_LISTEN or MAILGATE_DATA_DIR"
listen_host=${image_listen%:*}
grep -q 'COPY scripts/healthcheck.mjs' "$root/Dockerfile" || fail "the Dockerfile does not copy the healthcheck script"
grep -q 'CMD \["node", "healthcheck.mjs"\]' "$root/Dockerfile" || fail "the HEALTHCHECK does not run healthcheck.mjs"

cp "$root/package.json" "$root/package-lock.json" "$work/"
cp -r "$root/dist" "$work/dist"
cp "$root/scripts/healthcheck.mjs" "$work/healthcheck.mjs"
mkdir -p "$work/etc/mailgate" "$work/data"
# The default config as the image copies it: unchanged (dataDir: ../data, listen: 127.0.0.1:8025).
cp "$root/config/mailgate.yaml" "$work/etc/mailgate/mailgate.yaml"
(cd "$work" && npm ci --omit=dev --ignore-scripts=false --no-audit --no-fund >/dev/null 2>"$work/npm.err") || { cat "$work/npm.err"; exit 1; }

# As root, run as an unprivileged user that owns only the data dir, as the image's `node` user does.
as_user=()
if [ "$(id -u)" -eq 0 ]; then
  chmod 755 "$work"
  chown 65534:65534 "$work/data"
  as_user=(setpriv --reuid=65534 --regid=65534 --clear-groups)
fi
image_env=(PATH="$PATH" HOME="$work" NODE_ENV=production MAILGATE_CONFIG="$work/etc/mailgate/mailgate.yaml"
  MAILGATE_LISTEN="$listen_host:$port" MAILGATE_DATA_DIR="$work/data")
cd "$work"

overrides=$(env -i "${image_env[@]}" "${as_user[@]}" node dist/cli.js config check) || fail "config check failed: $overrides"
grep -q "MAILGATE_LISTEN=$listen_host:$port overrides server.listen" <<<"$overrides" || fail "config check does not show the MAILGATE_LISTEN override: $overrides"
grep -q "MAILGATE_DATA_DIR=$work/data overrides dataDir" <<<"$overrides" || fail "config check does not show the MAILGATE_DATA_DIR override: $overrides"

env -i "${image_env[@]}" "${as_user[@]}" node dist/cli.js serve >"$work/serve.log" 2>&1 &
pid=$!
ready=0
for _ in $(seq 1 150); do
  if curl -fsS "http://127.0.0.1:$port/readyz" >/dev/null 2>&1; then ready=1; break; fi
  kill -0 "$pid" 2>/dev/null || fail "serve exited early"
  sleep 0.2
done
[ "$ready" -eq 1 ] || fail "/readyz never answered"

if [ "$listen_host" = 0.0.0.0 ]; then
  # A wildcard listener answers on the machine's other addresses too (what -p needs in a container).
  other=$(hostname -I 2>/dev/null | tr ' ' '\n' | grep -v '^127\.' | grep -m1 '\.' || true)
  if [ -n "$other" ]; then
    curl -fsS "http://$other:$port/healthz" >/dev/null || fail "not listening on $listen_host:$port (no answer on $other)"
  else
    grep -q '"listen":"http://127.0.0.1:'"$port"'"' "$work/serve.log" || fail "not listening on port $port"
  fi
else
  grep -q "mailgate listening on http://$listen_host:$port" "$work/serve.log" || fail "not listening on $listen_host:$port"
fi
for f in mailgate.db secret.key admin.token; do
  [ -s "$work/data/$f" ] || fail "data/$f was not written to MAILGATE_DATA_DIR"
  if [ "${#as_user[@]}" -gt 0 ]; then [ "$(stat -c %u "$work/data/$f")" = 65534 ] || fail "data/$f is not owned by the non-root user"; fi
done
[ ! -e "$work/etc/data" ] || fail "state was written next to the config (etc/data) instead of MAILGATE_DATA_DIR"
token=$(cat "$work/data/admin.token")
curl -fsS -H "Authorization: Bearer $token" "http://127.0.0.1:$port/v1/accounts" >/dev/null || fail "the admin token in data/admin.token is refused"
env -i "${image_env[@]}" node healthcheck.mjs || fail "healthcheck.mjs fails although mailgate is up"
if env -i "${image_env[@]}" MAILGATE_LISTEN="$listen_host:$((port + 1))" node healthcheck.mjs 2>/dev/null; then
  fail "healthcheck.mjs passes on a port mailgate does not listen on"
fi
kill -TERM "$pid"; rc=0; wait "$pid" || rc=$?
pid=
[ "$rc" -eq 0 ] || fail "serve stopped with exit $rc"

if [ "${#as_user[@]}" -gt 0 ]; then
  mkdir -p "$work/readonly"   # owned by root: the non-root user may not write it
  out=$(env -i "${image_env[@]}" MAILGATE_DATA_DIR="$work/readonly/data" "${as_user[@]}" node dist/cli.js serve 2>&1) && fail "serve started with a data dir it cannot write"
  grep -q "permission denied" <<<"$out" || fail "a data dir without write access is not said in plain words: $out"
  grep -q "EACCES" <<<"$out" || fail "the system code is missing: $out"
else
  echo "image-check: not root, so the non-root and read-only data dir checks were not made"
fi
echo "image-check: production install as the image lays it out: listens on $listen_host:$port, state in MAILGATE_DATA_DIR as a non-root user, healthcheck follows the port, stopped with exit 0"
