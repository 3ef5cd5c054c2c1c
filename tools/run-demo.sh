#!/usr/bin/env bash
# `make run`: Herald on examples/herald.toml, with a local mail catcher (SMTP on
# 127.0.0.1:2525, messages in var/mail/) and a local webhook receiver (127.0.0.1:8025, plays
# Twilio, Slack and your webhooks; requests in var/hooks.jsonl), so every message of the
# README tour can be seen arriving. Ctrl-C stops all three.
set -euo pipefail
cd "$(dirname "$0")/.."
herald=${1:-build/herald}
mkdir -p var/mail

pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
}
trap cleanup EXIT INT TERM

/usr/bin/python3 tools/mailcatcher.py --host 127.0.0.1 --port 2525 --out var/mail &
pids+=($!)
/usr/bin/python3 tools/webhook_receiver.py --host 127.0.0.1 --port 8025 --out var/hooks.jsonl &
pids+=($!)

cat <<'MSG'

  Herald is starting on http://127.0.0.1:8080 with examples/herald.toml
  (database var/herald.db, API token "demo-token").
  Email arrives in var/mail/, SMS, chat and webhooks in var/hooks.jsonl.
  Follow the tour in README.md from another terminal, or open the console at
  http://127.0.0.1:8080/ui/ (sign in with demo-token). Ctrl-C stops everything.

MSG
"$herald" serve --config examples/herald.toml &
pids+=($!)
wait "${pids[-1]}"
