#!/usr/bin/env bash
# Sets up the example client "acme" on a running Herald: the client, a contact for every
# default role, a Slack room and a signed webhook, then the communication plan in
# examples/acme-plan.json (explained in docs/plan.md). Safe to run again: every call is a PUT.
#
#   HERALD_URL     Herald's base URL            (default http://127.0.0.1:8080, as `make run`)
#   HERALD_TOKEN   a token with the admin scope (default demo-token)
#   DEMO_RECEIVER  where the endpoints point    (default http://127.0.0.1:8025, the demo receiver)
#
# Any refused call stops the script with Herald's error on stderr and a non-zero exit.
set -euo pipefail

HERALD_URL="${HERALD_URL:-http://127.0.0.1:8080}"
HERALD_TOKEN="${HERALD_TOKEN:-demo-token}"
DEMO_RECEIVER="${DEMO_RECEIVER:-http://127.0.0.1:8025}"
HERALD_URL="${HERALD_URL%/}"
DEMO_RECEIVER="${DEMO_RECEIVER%/}"
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
plan_file="$here/acme-plan.json"

# put PATH JSON: PUT the JSON body, print Herald's answer; exit on any HTTP error.
put() {
  local path="$1" body="$2"
  echo "PUT $path" >&2
  curl --silent --show-error --fail-with-body --noproxy '*' -X PUT "$HERALD_URL$path" \
    -H "Authorization: Bearer $HERALD_TOKEN" -H "Content-Type: application/json" \
    --data-binary "$body"
  echo
}

put /v1/clients/acme \
  '{"name": "Acme Corp", "timezone": "America/Chicago", "locale": "en"}' >/dev/null

# People. MSP staff (@msp.example) first, then Acme's own (@acme.example).
contact() {
  put "/v1/clients/acme/contacts/$1" "$2" >/dev/null
}
contact tim '{"name": "Tim Okafor", "roles": ["technician"], "email": "tim@msp.example",
  "phone": "+15550100101", "timezone": "America/Chicago", "channels": ["sms", "email"]}'
contact priya '{"name": "Priya Nair", "roles": ["technician"], "email": "priya@msp.example",
  "phone": "+15550100102", "timezone": "America/Chicago", "channels": ["email", "sms"]}'
contact marcus '{"name": "Marcus Webb", "roles": ["incident_commander"],
  "email": "marcus@msp.example", "phone": "+15550100103", "timezone": "America/Chicago",
  "channels": ["sms", "email"]}'
contact dana '{"name": "Dana Lee", "roles": ["executive"], "email": "dana@acme.example",
  "phone": "+15551230101", "timezone": "America/New_York",
  "quiet_hours": {"start": "22:00", "end": "07:00"}, "channels": ["email", "sms"]}'
contact sofia '{"name": "Sofia Ramirez", "roles": ["executive"], "email": "sofia@acme.example",
  "phone": "+15551230102", "timezone": "America/Chicago",
  "quiet_hours": {"start": "21:30", "end": "06:30"}, "channels": ["email", "sms"]}'
contact lena '{"name": "Lena Fischer", "roles": ["legal"], "email": "lena@acme.example",
  "phone": "+15551230103", "timezone": "America/New_York",
  "quiet_hours": {"start": "22:00", "end": "06:00"}, "channels": ["email", "sms"]}'
contact grace '{"name": "Grace Kim", "roles": ["hr"], "email": "grace@acme.example",
  "timezone": "America/Chicago", "quiet_hours": {"start": "20:00", "end": "07:30"},
  "channels": ["email"]}'
contact omar '{"name": "Omar Haddad", "roles": ["pr"], "email": "omar@acme.example",
  "phone": "+15551230104", "timezone": "Europe/London",
  "quiet_hours": {"start": "23:00", "end": "07:00"}, "channels": ["email", "sms"]}'
contact jules '{"name": "Jules Moreau", "roles": ["communications"],
  "email": "jules@acme.example", "timezone": "America/Chicago", "channels": ["email"]}'
contact staff '{"name": "Acme staff", "roles": ["end_users"], "email": "all-staff@acme.example",
  "timezone": "America/Chicago", "quiet_hours": {"start": "19:00", "end": "08:00"},
  "channels": ["email"]}'

# Rooms: the MSP's SOC channel in Slack and Acme's SIEM, which takes signed webhooks.
put /v1/clients/acme/endpoints/soc-slack \
  "{\"type\": \"slack\", \"url\": \"$DEMO_RECEIVER/slack/T000/B000/XXXX\"}" >/dev/null
# Without a "secret", Herald generates the signing secret and shows it in this answer only.
siem="$(put /v1/clients/acme/endpoints/siem \
  "{\"type\": \"webhook\", \"url\": \"$DEMO_RECEIVER/hooks/siem\"}")"
secret="$(printf '%s' "$siem" | grep -o 'whsec_[^"]*' || true)"
if [[ -n "$secret" ]]; then
  echo "siem webhook signing secret (shown once: give it to the SIEM now): $secret"
fi

# The plan; Herald answers with it in canonical form, its version and any warnings.
echo "PUT /v1/clients/acme/plan" >&2
curl --silent --show-error --fail-with-body --noproxy '*' -X PUT \
  "$HERALD_URL/v1/clients/acme/plan" \
  -H "Authorization: Bearer $HERALD_TOKEN" -H "Content-Type: application/json" \
  --data-binary "@$plan_file"
echo
