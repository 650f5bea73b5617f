#!/usr/bin/env bash
# Proves the validators themselves work: the good.* fixtures must pass and
# the bad.* / malformed.* fixtures must fail, with both feedcheck.py and jing.
# Usage: bash tests/validators/selftest.sh   (from anywhere)
set -u
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
fx="$here/../fixtures/validators"
passed=0
failed=0

expect() { # expect WANT_RC DESCRIPTION CMD...
  local want="$1" what="$2"
  shift 2
  "$@" >/dev/null 2>&1
  local got=$?
  if [ "$got" -eq "$want" ]; then
    passed=$((passed + 1))
  else
    failed=$((failed + 1))
    echo "selftest FAILED: $what: exit $got, expected $want" >&2
  fi
}

py() { python3 "$here/feedcheck.py" "$@"; }

expect 0 "feedcheck good.rss" py "$fx/good.rss" rss
expect 1 "feedcheck bad.rss" py "$fx/bad.rss" rss
expect 1 "feedcheck malformed.rss" py "$fx/malformed.rss" rss
expect 0 "feedcheck good.atom" py "$fx/good.atom" atom
expect 1 "feedcheck bad.atom" py "$fx/bad.atom" atom
expect 0 "feedcheck good.json" py "$fx/good.json" json
expect 1 "feedcheck bad.json" py "$fx/bad.json" json
expect 1 "feedcheck good.rss read as atom" py "$fx/good.rss" atom
expect 0 "jing good.atom" jing -c "$fx/atom.rnc" "$fx/good.atom"
expect 1 "jing bad.atom" jing -c "$fx/atom.rnc" "$fx/bad.atom"
expect 1 "jing good.rss" jing -c "$fx/atom.rnc" "$fx/good.rss"

echo "validators selftest: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
