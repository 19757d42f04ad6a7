#!/bin/sh
# HAProxy's external check for the PostgreSQL primary (scripts/stack-ha.sh): called with the
# proxy's address and port, then the server's; succeeds only if that server accepts writes.
[ "$(/usr/bin/psql -h "$3" -p "$4" -U postgres -d postgres -qAtX -w -c 'SELECT NOT pg_is_in_recovery()' 2>/dev/null)" = t ]
