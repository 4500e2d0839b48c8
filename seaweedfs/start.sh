#!/bin/sh
# Starts SeaweedFS for docker-compose.s3.yml: one process (`weed mini`: master, volume, filer and S3 gateway)
# with one S3 identity whose keys come from the same file Loki and Tempo read (secrets/s3_credentials, the
# AWS shared-credentials format, profile [default]), and the buckets they write to created before it reports
# ready. SeaweedFS takes a static admin identity from AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY
# (weed/s3api/auth_credentials.go at 4.44); they are exported here, inside this process only, so the secret
# is in no compose file, `docker inspect` or log line. A missing, unreadable or incomplete file stops the
# container (and so `up --wait`) with one line naming the file, never an open or keyless S3 endpoint.
set -eu

CREDENTIALS="${OBS_S3_CREDENTIALS_FILE:-/run/obs-secrets/s3_credentials}"
WEED="${OBS_WEED:-/usr/bin/weed}"   # the tests point this at a stand-in; the image's binary otherwise

fail() {
    echo "seaweedfs: $1 ($CREDENTIALS; docs/capacity.md, \"Object storage\")" >&2
    exit 1
}

[ -f "$CREDENTIALS" ] || fail "the S3 credentials file is missing"
[ -r "$CREDENTIALS" ] || fail "the S3 credentials file is not readable by uid $(id -u)"

# Value of key $1 in the [default] profile: `key = value`, spaces and a Windows CR ignored.
ini_value() {
    awk -v want="$1" '
        { line = $0; gsub(/[ \t\r]/, "", line) }
        line ~ /^\[/ { section = line; next }
        section == "[default]" {
            i = index(line, "=")
            if (i > 1 && substr(line, 1, i - 1) == want) { print substr(line, i + 1); exit }
        }' "$CREDENTIALS"
}

AWS_ACCESS_KEY_ID="$(ini_value aws_access_key_id)"
AWS_SECRET_ACCESS_KEY="$(ini_value aws_secret_access_key)"
[ -n "$AWS_ACCESS_KEY_ID" ] || fail "no aws_access_key_id in its [default] profile"
[ -n "$AWS_SECRET_ACCESS_KEY" ] || fail "no aws_secret_access_key in its [default] profile"
[ "${#AWS_SECRET_ACCESS_KEY}" -ge 16 ] || fail "aws_secret_access_key is shorter than 16 characters"
export AWS_ACCESS_KEY_ID AWS_SECRET_ACCESS_KEY

# -ip: the components find each other on loopback inside this one container; they bind 0.0.0.0 (-ip.bind's
# default) so Loki and Tempo reach the S3 port over the compose network. Everything this stack does not use
# is off: the admin UI, WebDAV, the Iceberg and Lance catalogs, the IAM API (the identity above is the only
# one) and the anonymous usage report to telemetry.seaweedfs.com.
exec "$WEED" -logtostderr=true mini \
    -dir=/data \
    -ip=127.0.0.1 \
    -bucket="${OBS_S3_BUCKETS:-loki,tempo}" \
    -admin.ui=false \
    -webdav=false \
    -s3.port.iceberg=0 \
    -s3.port.lance=0 \
    -s3.iam=false \
    -master.telemetry=false
