#!/bin/bash
# Checks systemd/herald.service, herald.sysusers and herald.tmpfiles with systemd's own tools,
# which work without systemd as PID 1: `systemd-analyze verify`, the offline security score,
# and sysusers/tmpfiles applied to a scratch root.
# Usage: check_unit.sh SOURCE_DIR HERALD_BIN. Exit 77 (skipped) only when systemd-analyze is
# not installed.
set -euo pipefail

src=${1:?usage: check_unit.sh SOURCE_DIR HERALD_BIN}
bin=${2:?usage: check_unit.sh SOURCE_DIR HERALD_BIN}
unit=$src/systemd/herald.service
max_exposure=2.0

if ! command -v systemd-analyze >/dev/null 2>&1; then
  echo "SKIP: systemd-analyze is not installed (Debian package systemd)"
  exit 77
fi
[[ -x $bin ]] || { echo "FAIL: $bin is not an executable"; exit 1; }

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# verify refuses an ExecStart whose binary is missing: check a copy that runs the built one.
sed "s|/usr/bin/herald|$bin|g" "$unit" >"$work/herald.service"
if ! out=$(systemd-analyze verify "$work/herald.service" 2>&1) || [[ -n $out ]]; then
  echo "FAIL: systemd-analyze verify:"
  echo "$out"
  exit 1
fi
echo "ok: systemd-analyze verify herald.service"

report=$(systemd-analyze security --offline=true "$work/herald.service" 2>&1) || {
  echo "FAIL: systemd-analyze security --offline=true:"
  echo "$report"
  exit 1
}
score=$(sed -n 's/.*Overall exposure level for herald\.service: \([0-9.]*\).*/\1/p' <<<"$report")
if [[ -z $score ]]; then
  echo "FAIL: no exposure level in:"
  echo "$report"
  exit 1
fi
echo "exposure level: $score (at most $max_exposure)"
if ! awk -v s="$score" -v m="$max_exposure" 'BEGIN { exit !(s <= m) }'; then
  grep '✗' <<<"$report" || true
  echo "FAIL: exposure $score > $max_exposure"
  exit 1
fi

# The unit's timeouts must outlast the daemon's own shutdown drain (5 s HTTP + 5 s deliveries).
grep -qx 'Type=notify' "$unit" || { echo "FAIL: not Type=notify"; exit 1; }
stop=$(sed -n 's/^TimeoutStopSec=\([0-9]*\)s$/\1/p' "$unit")
[[ -n $stop && $stop -gt 10 ]] || { echo "FAIL: TimeoutStopSec must exceed 10s"; exit 1; }
echo "ok: Type=notify, TimeoutStopSec=${stop}s"

if command -v systemd-sysusers >/dev/null && command -v systemd-tmpfiles >/dev/null; then
  root=$work/root
  mkdir -p "$root/etc"
  systemd-sysusers --root="$root" "$src/systemd/herald.sysusers"
  grep -q '^herald:' "$root/etc/passwd" || { echo "FAIL: sysusers made no herald user"; exit 1; }
  uid=$(awk -F: '$1 == "herald" { print $3 }' "$root/etc/passwd")
  systemd-tmpfiles --root="$root" --create "$src/systemd/herald.tmpfiles"
  got=$(stat -c '%a %u' "$root/var/lib/herald")
  [[ $got == "700 $uid" ]] || { echo "FAIL: /var/lib/herald is '$got', want '700 $uid'"; exit 1; }
  [[ -d $root/etc/herald ]] || { echo "FAIL: tmpfiles made no /etc/herald"; exit 1; }
  echo "ok: sysusers and tmpfiles (scratch root)"
else
  echo "note: systemd-sysusers/systemd-tmpfiles missing; their files were not checked"
fi
echo "PASS"
