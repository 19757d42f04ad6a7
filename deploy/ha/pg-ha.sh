#!/bin/sh
# Entry of the PostgreSQL failover image (deploy/ha/Dockerfile), as scripts/stack-ha.sh runs the
# same pieces locally:
#   pg-ha monitor      pg_auto_failover's monitor, tuned (monitor.conf)
#   pg-ha node NAME    a node: the first to join becomes the primary, the next its synchronous
#                      standby; the application's role is made on the primary before a standby
#                      copies it
#   pg-ha router       HAProxy on :5432 to whichever node accepts writes
# A node's or the monitor's data survives in its volume; a restarted one runs again from it.
set -eu
MONITOR=postgres://autoctl_node@pg-monitor:5432/pg_auto_failover?sslmode=require

case ${1:-} in
monitor)
	if [ ! -s "$PGDATA/PG_VERSION" ]; then
		pg_autoctl create monitor --pgdata "$PGDATA" --hostname pg-monitor --auth trust --ssl-self-signed
		cat /etc/pg-ha/monitor.conf >>"$PGDATA/postgresql.auto.conf"
	fi
	exec pg_autoctl run --pgdata "$PGDATA"
	;;
node)
	name=${2:?pg-ha node NAME}
	if [ ! -s "$PGDATA/PG_VERSION" ]; then
		# The primary, if one runs already, gets the application's role before this node copies it.
		if pg-primary-check.sh - - pg-node1 5432; then
			psql -h pg-node1 -U postgres -d postgres -qAtX -v ON_ERROR_STOP=1 <<-'SQL'
				DO $$ BEGIN
					IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'txn') THEN
						CREATE ROLE txn LOGIN PASSWORD 'txn';
					END IF;
				END $$;
				ALTER DATABASE txn OWNER TO txn;
			SQL
		fi
		pg_autoctl create postgres --pgdata "$PGDATA" --name "$name" --hostname "$name" --dbname txn \
			--auth trust --ssl-self-signed --pg-hba-lan --monitor "$MONITOR"
		# A primary cut off from the monitor demotes itself after 3 s, before the monitor
		# promotes the standby (4 s: monitor.conf).
		pg_autoctl config set --pgdata "$PGDATA" timeout.network_partition_timeout 3
		# The compose network's other containers (PgBouncer, the services, the router's check)
		# reach every database, as on the single server's development setup.
		echo "host all all samenet trust" >>"$PGDATA/pg_hba.conf"
		pg_ctl -D "$PGDATA" reload >/dev/null 2>&1 || true
	fi
	exec pg_autoctl run --pgdata "$PGDATA"
	;;
router)
	exec haproxy -db -f /etc/pg-ha/pg-primary.cfg
	;;
esac
echo "usage: pg-ha monitor | node NAME | router" >&2
exit 2
