#!/bin/sh
# Grafana admin password, never a default: secrets/grafana_admin_password when the operator
# provides one, else a random one generated once into the data volume. The password is never logged.
set -eu
secrets_dir="${OBS_SECRETS_DIR:-/run/obs-secrets}"
user_file="$secrets_dir/grafana_admin_password"
gen_file="${GF_PATHS_DATA:-/var/lib/grafana}/.admin_password"

if [ -s "$user_file" ]; then
  GF_SECURITY_ADMIN_PASSWORD__FILE="$user_file"
else
  if [ ! -s "$gen_file" ]; then
    old_umask=$(umask)
    umask 077
    # 144 random bits, URL-safe; tr drops base64 padding and the characters shells trip on.
    head -c 18 /dev/urandom | base64 | tr -d '\n=+/' > "$gen_file"
    umask "$old_umask"
    echo '{"level":"info","logger":"obs-entrypoint","msg":"generated the Grafana admin password","read_with":"docker compose exec grafana cat '"$gen_file"'"}'
  fi
  GF_SECURITY_ADMIN_PASSWORD__FILE="$gen_file"
fi
export GF_SECURITY_ADMIN_PASSWORD__FILE
unset GF_SECURITY_ADMIN_PASSWORD
exec "${GRAFANA_RUN:-/run.sh}" "$@"
