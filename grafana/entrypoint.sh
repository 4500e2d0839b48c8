#!/bin/sh
# Grafana admin password, never a default: secrets/grafana_admin_password when the operator
# provides one, else a random one generated once into the data volume. The password is never logged.
# A password file that exists but this user cannot read (or that is blank) stops the container: the
# image's /run.sh would read nothing and Grafana would start with its built-in default admin password.
set -eu
secrets_dir="${OBS_SECRETS_DIR:-/run/obs-secrets}"
user_file="$secrets_dir/grafana_admin_password"
gen_file="${GF_PATHS_DATA:-/var/lib/grafana}/.admin_password"
uid=$(id -u)
gid=$(id -g)

# A JSON string body: control characters dropped (one line), backslashes and quotes escaped.
json() { printf '%s' "$1" | tr -d '\001-\037' | sed 's/[\\"]/\\&/g'; }

# The stack's log schema (docs/logging.md) starts every line with ts (UTC, milliseconds), level, component,
# logger, msg. `date` without %N support (or none at all) gives .000 or the epoch rather than no line.
stamp() {
  _t=$(date -u +%Y-%m-%dT%H:%M:%S.%N 2>/dev/null) || :
  _ns=${_t##*.}
  case $_ns in
    [0-9][0-9][0-9][0-9][0-9][0-9][0-9][0-9][0-9]) _t="${_t%.*}.${_ns%??????}Z" ;;
    *) _t="${_t%.*}.000Z" ;;
  esac
  case $_t in
    [0-9][0-9][0-9][0-9]-*) printf '%s' "$_t" ;;
    *) printf '1970-01-01T00:00:00.000Z' ;;
  esac
}
head_fields() { printf '"ts":"%s","level":"%s","component":"grafana","logger":"obs-entrypoint"' "$(stamp)" "$1"; }

# refuse FILE PROBLEM FIX: one JSON line on stderr, then exit 1. Never given the password.
refuse() {
  printf '{%s,"msg":"%s","file":"%s","uid":%s,"fix":"%s"}\n' "$(head_fields error)" \
    "$(json "refusing to start Grafana: $1 $2; uid $uid must be able to read it")" "$(json "$1")" \
    "$uid" "$(json "$3")" >&2
  exit 1
}

# Why FILE cannot be read as a password file by this uid; prints nothing when it can.
problem() {
  if [ -L "$1" ] && [ ! -e "$1" ]; then echo "is a dangling symbolic link"
  elif [ ! -f "$1" ]; then echo "is not a regular file"
  elif [ ! -r "$1" ]; then echo "is not readable"
  else
    # grep exits 0 when a non-blank character is found, 1 when the file is blank, 2 when it cannot read
    rc=0
    grep -q '[^[:space:]]' "$1" 2>/dev/null || rc=$?
    case $rc in
      0) ;;
      1) echo "is empty" ;;
      *) echo "cannot be read" ;;
    esac
  fi
}

if [ -e "$user_file" ] || [ -L "$user_file" ]; then
  why=$(problem "$user_file")
  case $why in
    "") ;;
    "is empty") refuse "$user_file" "$why" "write the password into secrets/grafana_admin_password, or delete the file to have a random one generated" ;;
    *) refuse "$user_file" "$why" "make secrets/grafana_admin_password a regular file uid $uid can read: chmod 0644 secrets/grafana_admin_password (or chown $uid, or chgrp $gid and chmod 0640)" ;;
  esac
  GF_SECURITY_ADMIN_PASSWORD__FILE="$user_file"
elif [ -d "$secrets_dir" ] && [ ! -x "$secrets_dir" ]; then
  # Whether the operator provided a password cannot be told: guessing "no" would silently ignore it.
  refuse "$user_file" "is in a directory this user cannot search" "chmod 0755 the secrets folder mounted at $secrets_dir"
else
  why=""
  if [ -e "$gen_file" ] || [ -L "$gen_file" ]; then
    why=$(problem "$gen_file")
  fi
  case $why in
    "") ;;
    # Ours and blank (e.g. interrupted on the first start): nothing to keep, generate again.
    "is empty") ;;
    # Not regenerated over: Grafana sets the admin password only when it creates its database, so a new
    # file would no longer match the password in use.
    *) refuse "$gen_file" "$why" "make it a regular file uid $uid can read, e.g. docker compose run --rm --user 0 --entrypoint chown grafana $uid $gen_file" ;;
  esac
  if [ ! -e "$gen_file" ] || [ -n "$why" ]; then
    old_umask=$(umask)
    umask 077
    # 144 random bits, URL-safe; tr drops base64 padding and the characters shells trip on.
    { head -c 18 /dev/urandom | base64 | tr -d '\n=+/' > "$gen_file"; } 2>/dev/null || true
    umask "$old_umask"
    why=$(problem "$gen_file")
    if [ -n "$why" ]; then
      refuse "$gen_file" "$why after generating a password" "uid $uid must be able to write ${gen_file%/*}; head, base64 and tr must be installed"
    fi
    printf '{%s,"msg":"generated the Grafana admin password","read_with":"docker compose exec grafana cat %s"}\n' \
      "$(head_fields info)" "$(json "$gen_file")"
  fi
  GF_SECURITY_ADMIN_PASSWORD__FILE="$gen_file"
fi
export GF_SECURITY_ADMIN_PASSWORD__FILE
unset GF_SECURITY_ADMIN_PASSWORD
exec "${GRAFANA_RUN:-/run.sh}" "$@"
