#!/bin/sh
# Entrypoint of the PostgreSQL image images.sh builds from Debian's packages. It keeps the
# contract of the official image that the chart's StatefulSet relies on: PGDATA, POSTGRES_USER,
# POSTGRES_DB and POSTGRES_PASSWORD_FILE. An empty PGDATA is initialised once (that superuser
# with that password, and its database), then the server runs in the foreground.
#
# Initialisation happens in a sibling directory that is renamed into place when complete, so a
# pod killed halfway starts over instead of serving a cluster without its database.
set -eu

: "${PGDATA:?PGDATA must name the data directory}"
: "${POSTGRES_USER:?POSTGRES_USER must name the superuser}"
: "${POSTGRES_DB:?POSTGRES_DB must name the database}"
: "${POSTGRES_PASSWORD_FILE:?POSTGRES_PASSWORD_FILE must name the password file}"

initialise() {
  staging="$PGDATA.initdb"
  rm -rf "$staging"
  initdb --pgdata="$staging" --username="$POSTGRES_USER" --pwfile="$POSTGRES_PASSWORD_FILE" \
    --auth=scram-sha-256 --encoding=UTF8 --locale=C
  # initdb lets in loopback hosts only; Pulse connects over the pod network, with the password.
  echo "host all all all scram-sha-256" >> "$staging/pg_hba.conf"
  if [ "$POSTGRES_DB" != postgres ]; then
    echo "CREATE DATABASE \"$POSTGRES_DB\" OWNER \"$POSTGRES_USER\";" \
      | postgres --single -D "$staging" postgres > /dev/null
  fi
  # An empty PGDATA (a directory made for it) gives way; one with files stops the start here.
  if [ -d "$PGDATA" ]; then rmdir "$PGDATA"; fi
  mv "$staging" "$PGDATA"
}

[ -s "$PGDATA/PG_VERSION" ] || initialise
# The pod's addresses, as the Service reaches it; JIT is left out of the image (jit=off).
exec postgres -D "$PGDATA" -c listen_addresses='*' -c jit=off "$@"
