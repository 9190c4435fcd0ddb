"""Start-up checks that turn a wrong port or database into one line naming what to change.

Without them gunicorn retries a busy port five times with "Connection in use", and the
connection pool waits DB_POOL_TIMEOUT for a database that does not exist before two tracebacks.
"""

import errno
import re
import socket

# libpq's (server's) words for a database name that is not there.
MISSING_DATABASE = re.compile(r'database "(?P<name>[^"]+)" does not exist')
DATABASE_VARIABLES = {"default": "DATABASE_URL"}


def busy_port_problem(addresses):
    """A line naming PORT when one of gunicorn's (host, port) addresses is taken, or None."""
    for address in addresses:
        if not isinstance(address, tuple):
            continue  # a unix socket: gunicorn reports it well enough
        host, port = address[0], address[1]
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        with socket.socket(family, socket.SOCK_STREAM) as probe:
            # As gunicorn binds: a socket in TIME_WAIT does not count as taken.
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                probe.bind((host, port))
            except OSError as error:
                if error.errno != errno.EADDRINUSE:
                    raise
                return (
                    f"PORT: {port} on {host} is in use already; stop what listens there or "
                    f"choose another port with PORT= (make run PORT={port + 1})"
                )
    return None


def missing_database_problem(databases):
    """A line naming the variable and the PostgreSQL database that does not exist, or None.

    One plain connection per database, no pool: a server that is down or slow is not this check's
    business (the probes report it); only a name that is wrong stops start-up.
    """
    import psycopg

    for alias, database in databases.items():
        if not database["ENGINE"].endswith("postgresql"):
            continue
        options = database.get("OPTIONS", {})
        try:
            psycopg.connect(
                host=database.get("HOST") or None,
                port=database.get("PORT") or None,
                user=database.get("USER") or None,
                password=database.get("PASSWORD") or None,
                dbname=database["NAME"],
                connect_timeout=options.get("connect_timeout", 5),
                sslmode=options.get("sslmode", "prefer"),
            ).close()
        except psycopg.OperationalError as error:
            missing = MISSING_DATABASE.search(str(error))
            if missing:
                variable = DATABASE_VARIABLES.get(alias, "DATABASE_REPLICA_URLS")
                host, port = database.get("HOST") or "localhost", database.get("PORT") or 5432
                user = database.get("USER") or "postgres"
                return (
                    f"{variable}: database {missing['name']!r} does not exist on {host}:{port}; "
                    f"create it (createdb -h {host} -p {port} -U {user} {missing['name']}) "
                    "or correct the URL"
                )
    return None
