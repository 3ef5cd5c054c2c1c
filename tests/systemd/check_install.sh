#!/bin/bash
# `cmake --install` puts every file where a Linux user looks for it, under a scratch prefix and
# with DESTDIR, and the installed unit starts the installed binary.
# Usage: check_install.sh BUILD_DIR
set -euo pipefail

build=${1:?usage: check_install.sh BUILD_DIR}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

check() {
  local root=$1 prefix=$2
  local files=(
    bin/herald
    lib/systemd/system/herald.service
    lib/sysusers.d/herald.conf
    lib/tmpfiles.d/herald.conf
    share/doc/herald/examples/herald.toml
    share/doc/herald/examples/acme-plan.json
    share/doc/herald/examples/acme-setup.sh
    share/doc/herald/operations.md
    share/doc/herald/configuration.md
    share/doc/herald/api.md
    share/doc/herald/README.md
    share/herald/templates/containment.email.subject.mustache
    share/herald/templates/any.sms.text.mustache
  )
  for f in "${files[@]}"; do
    [[ -f $root$prefix/$f ]] || { echo "FAIL: $prefix/$f was not installed"; exit 1; }
  done
  [[ -x $root$prefix/bin/herald ]] || { echo "FAIL: bin/herald is not executable"; exit 1; }
  "$root$prefix/bin/herald" --version | grep -q '^herald ' || { echo "FAIL: herald --version"; exit 1; }
  local unit=$root$prefix/lib/systemd/system/herald.service
  grep -qx "ExecStart=$prefix/bin/herald serve --config /etc/herald/herald.toml" "$unit" ||
    { echo "FAIL: the unit's ExecStart does not name $prefix/bin/herald:"; grep Exec "$unit"; exit 1; }
  grep -qx "Documentation=file:$prefix/share/doc/herald/operations.md" "$unit" ||
    { echo "FAIL: the unit's Documentation= does not name the installed docs"; exit 1; }
  # The installed example configuration is valid as shipped.
  "$root$prefix/bin/herald" check-config --config "$root$prefix/share/doc/herald/examples/herald.toml" >/dev/null ||
    { echo "FAIL: the installed example configuration does not pass check-config"; exit 1; }
  # Nothing outside the prefix (the live /etc/herald/herald.toml is the operator's).
  if [[ -n $root ]]; then
    local outside
    outside=$(cd "$root" && find . -type f | grep -v "^\.$prefix/" || true)
    [[ -z $outside ]] || { echo "FAIL: installed outside $prefix: $outside"; exit 1; }
  fi
  echo "ok: $prefix (root ${root:-/})"
}

cmake --install "$build" --prefix "$work/x" >/dev/null
check "" "$work/x"

DESTDIR=$work/stage cmake --install "$build" --prefix /usr >/dev/null
check "$work/stage" /usr
echo "PASS"
