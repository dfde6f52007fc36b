#!/usr/bin/env bash
# Generates, once, every config and registration docker/compose.yaml needs, each tool with its
# own generator: Synapse `generate`, `matrix-os generate-registration`, and each mautrix bridge's
# first two starts (config.yaml, then registration.yaml). Re-running keeps what exists.
# Then: docker compose -f docker/compose.yaml up -d
set -euo pipefail
cd "$(dirname "$0")"

if [ ! -f .env ]; then
  cp compose/env.example .env
  echo "Wrote docker/.env: set SERVER_NAME, POSTGRES_PASSWORD, the Telegram API id/hash and a model key, then run this again."
  exit 1
fi
set -a; . ./.env; set +a
: "${SERVER_NAME:?SERVER_NAME is empty in docker/.env}"
: "${POSTGRES_PASSWORD:?POSTGRES_PASSWORD is empty in docker/.env}"
dc() { docker compose -f compose.yaml --env-file .env "$@"; }
mkdir -p data/synapse data/matrix-os data/telegram data/whatsapp data/postgres

echo "== synapse"
[ -f data/synapse/homeserver.yaml ] || dc run --rm --no-deps synapse generate
# Ours on top of the generated file (compose.yaml passes both to Synapse).
cat > data/synapse/matrix-os.yaml <<YAML
database:
  name: psycopg2
  args: {user: matrix, password: "${POSTGRES_PASSWORD}", dbname: synapse, host: postgres, cp_min: 5, cp_max: 10}
app_service_config_files:
  - /appservices/matrix-os/registration.yaml
  - /appservices/telegram/registration.yaml
  - /appservices/whatsapp/registration.yaml
# Encrypted appservices (every twin has its own device): MSC2409 and MSC3202.
experimental_features:
  msc2409_to_device_messages_enabled: true
  msc3202_transaction_extensions: true
YAML

echo "== matrix-os"
if [ ! -f data/matrix-os/config.toml ]; then
  cat > data/matrix-os/config.toml <<TOML
[homeserver]
url = "http://synapse:8008"
server_name = "${SERVER_NAME}"

[appservice]
listen = "0.0.0.0:8009"
url = "http://matrix-os:8009"
registration = "registration.yaml"

[llm]
# openai (OPENAI_API_KEY, OPENAI_BASE_URL) or anthropic (ANTHROPIC_API_KEY); see config.example.toml.
provider = "${MATRIX_OS_PROVIDER:-openai}"

[bridges.telegram]
bot = "@telegrambot:${SERVER_NAME}"
ghosts = ["@telegram_*:${SERVER_NAME}"]

[bridges.whatsapp]
bot = "@whatsappbot:${SERVER_NAME}"
ghosts = ["@whatsapp_*:${SERVER_NAME}"]
TOML
fi
[ -f data/matrix-os/registration.yaml ] || \
  dc run --rm --no-deps matrix-os generate-registration -c /data/config.toml -o /data/registration.yaml

# A bridge: first start writes config.yaml (its own -e), then we set what this setup needs with
# the yq inside its image, then the second start writes registration.yaml (its own -g).
bridge() {
  local name=$1 port=$2 extra=$3
  echo "== mautrix-$name"
  if [ ! -f "data/$name/config.yaml" ]; then
    dc run --rm --no-deps "$name" || true
    dc run --rm --no-deps -e SERVER_NAME -e POSTGRES_PASSWORD -e TELEGRAM_API_ID -e TELEGRAM_API_HASH \
      --entrypoint yq "$name" -i "
        .homeserver.address = \"http://synapse:8008\" |
        .homeserver.domain = env(SERVER_NAME) |
        .appservice.address = \"http://$name:$port\" |
        .appservice.hostname = \"0.0.0.0\" |
        .appservice.port = $port |
        .database.type = \"postgres\" |
        .database.uri = \"postgres://matrix:\" + env(POSTGRES_PASSWORD) + \"@postgres/$name?sslmode=disable\" |
        .bridge.permissions = {env(SERVER_NAME): \"user\"} |
        .bridge.relay.enabled = true |
        .bridge.relay.admin_only = false |
        .bridge.kick_matrix_users = false
        $extra" /data/config.yaml
  fi
  [ -f "data/$name/registration.yaml" ] || dc run --rm --no-deps "$name" || true
  [ -f "data/$name/registration.yaml" ] || { echo "mautrix-$name wrote no registration.yaml; see its output above"; exit 1; }
}
: "${TELEGRAM_API_ID:?the Telegram bridge needs TELEGRAM_API_ID and TELEGRAM_API_HASH in docker/.env (https://my.telegram.org/apps)}"
bridge telegram 29317 '| .network.api_id = (env(TELEGRAM_API_ID) | tonumber) | .network.api_hash = env(TELEGRAM_API_HASH)'
bridge whatsapp 29318 ''

echo "Done. Start everything: docker compose -f docker/compose.yaml up -d"
