#!/usr/bin/env bash
# Performs the Dockerfile's steps without a Docker engine (none runs here):
# production dependencies only, dist/ and the image's edited default config in
# a clean folder, then `serve` from there until /readyz answers. Catches a
# runtime dependency that sits in devDependencies, or a file the image lacks.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
work=$(mktemp -d)
trap 'kill "${pid:-0}" 2>/dev/null || true; rm -rf "$work"' EXIT
[ -d "$root/dist" ] || (cd "$root" && npm run build >/dev/null)
cp "$root/package.json" "$root/package-lock.json" "$work/"
cp -r "$root/dist" "$work/dist"
mkdir -p "$work/etc" "$work/data"
sed "s|^dataDir:.*|dataDir: $work/data|; s|listen: 127.0.0.1:8025|listen: 127.0.0.1:${PORT:-18725}|; s|publicUrl: http://127.0.0.1:8025|publicUrl: http://127.0.0.1:${PORT:-18725}|" \
  "$root/config/mailgate.yaml" > "$work/etc/mailgate.yaml"
(cd "$work" && npm ci --omit=dev --ignore-scripts=false --no-audit --no-fund >/dev/null 2>"$work/npm.err") || { cat "$work/npm.err"; exit 1; }
cd "$work"
env -i PATH="$PATH" HOME="$work" NODE_ENV=production MAILGATE_CONFIG="$work/etc/mailgate.yaml" node dist/cli.js serve >"$work/serve.log" 2>&1 &
pid=$!
for _ in $(seq 1 100); do
  if curl -fsS "http://127.0.0.1:${PORT:-18725}/readyz" >/dev/null 2>&1; then
    kill -TERM "$pid"; wait "$pid"; rc=$?
    echo "image-check: production install served /readyz and stopped with exit $rc"
    exit "$rc"
  fi
  if ! kill -0 "$pid" 2>/dev/null; then echo "image-check: serve exited early"; cat "$work/serve.log"; exit 1; fi
  sleep 0.2
done
echo "image-check: /readyz never answered"; cat "$work/serve.log"; exit 1
