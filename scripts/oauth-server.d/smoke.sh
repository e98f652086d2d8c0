#!/usr/bin/env bash
# A by-hand check of the test OAuth server with curl, for after a change to server.mjs or the pins:
# client_credentials, the device grant approved through the test hook, refresh-token rotation and
# reuse detection. Starts the server on a free loopback port, stops it at the end, and exits
# non-zero when a check fails. Needs curl and node.
#
#   scripts/oauth-server.d/smoke.sh
set -uo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
launcher="$("$here/../oauth-server")" || exit 1
out="$(mktemp)" err="$(mktemp)"
"$launcher" --port 0 --access-token-ttl 60 >"$out" 2>"$err" &
pid=$!
trap 'kill "$pid" 2>/dev/null; wait "$pid" 2>/dev/null; rm -f "$out" "$err"' EXIT
for _ in $(seq 250); do grep -q listening "$out" && break; sleep 0.02; done
issuer="$(sed -n 's/^oauth-server listening at //p' "$out")"
if [[ -z "$issuer" ]]; then
  echo "the server did not start:" >&2
  cat "$err" >&2
  exit 1
fi

passed=0 failed=0
field() { node -e 'let s="";process.stdin.on("data",d=>s+=d).on("end",()=>{const v=JSON.parse(s)[process.argv[1]];process.stdout.write(v===undefined?"":String(v))})' "$1"; }
check() { # NAME WANT GOT
  if [[ "$3" == "$2" ]]; then
    passed=$((passed + 1))
    echo "ok: $1"
  else
    failed=$((failed + 1))
    echo "FAILED: $1: want $2, got $3"
  fi
}
token() { curl -sS -u patchbay:patchbay-secret "$@" "$issuer/token"; }
device_grant=urn:ietf:params:oauth:grant-type:device_code

r="$(token -d grant_type=client_credentials)"
check "client_credentials gives a Bearer token" Bearer "$(field token_type <<<"$r")"

r="$(curl -sS -u patchbay:patchbay-secret -d scope=openid "$issuer/device/auth")"
device_code="$(field device_code <<<"$r")" user_code="$(field user_code <<<"$r")"
check "device authorization names the poll interval" 1 "$(field interval <<<"$r")"
check "polling before approval" authorization_pending "$(token -d grant_type=$device_grant -d device_code="$device_code" | field error)"
r="$(curl -sS -H 'content-type: application/json' -d "{\"user_code\":\"$user_code\",\"account\":\"alice\"}" "$issuer/test/device/approve")"
check "the test hook approves the user code" alice "$(node -p 'JSON.parse(process.argv[1]).approved[0].account' "$r")"
r="$(token -d grant_type=$device_grant -d device_code="$device_code")"
access="$(field access_token <<<"$r")" rt1="$(field refresh_token <<<"$r")"
check "the device grant gives a refresh token" yes "$([[ -n "$rt1" ]] && echo yes || echo no)"
check "userinfo knows the account" alice "$(curl -sS -H "Authorization: Bearer $access" "$issuer/me" | field sub)"
check "introspection: the access token is active" true "$(curl -sS -u patchbay:patchbay-secret -d token="$access" "$issuer/token/introspection" | field active)"

rt2="$(token -d grant_type=refresh_token -d refresh_token="$rt1" | field refresh_token)"
check "a refresh rotates the refresh token" yes "$([[ -n "$rt2" && "$rt2" != "$rt1" ]] && echo yes || echo no)"
rt3="$(token -d grant_type=refresh_token -d refresh_token="$rt2" | field refresh_token)"
check "the rotated refresh token works once" yes "$([[ -n "$rt3" && "$rt3" != "$rt2" ]] && echo yes || echo no)"
check "the old refresh token is refused" invalid_grant "$(token -d grant_type=refresh_token -d refresh_token="$rt1" | field error)"
check "reuse revoked the grant: the newest refresh token too" invalid_grant "$(token -d grant_type=refresh_token -d refresh_token="$rt3" | field error)"

r="$(curl -sS -u patchbay:patchbay-secret -d scope=openid "$issuer/device/auth")"
device_code="$(field device_code <<<"$r")"
curl -sS -d '{"client_id":"patchbay","account":"bob","via":"pages"}' "$issuer/test/device/approve" >/dev/null
check "approval through oidc-provider's own pages" bob "$(curl -sS -H "Authorization: Bearer $(token -d grant_type=$device_grant -d device_code="$device_code" | field access_token)" "$issuer/me" | field sub)"

r="$(curl -sS -u patchbay:patchbay-secret -d scope=openid "$issuer/device/auth")"
device_code="$(field device_code <<<"$r")" user_code="$(field user_code <<<"$r")"
curl -sS -d "{\"user_code\":\"$user_code\"}" "$issuer/test/device/deny" >/dev/null
check "a denied user code" access_denied "$(token -d grant_type=$device_grant -d device_code="$device_code" | field error)"

echo "$passed passed, $failed failed"
((failed == 0))
