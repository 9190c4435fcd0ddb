"""The replicas' state, as the readiness checks measure it.

One function, so that the audit follows whatever decides replica routing (its health and lag)
without the checks knowing how it is measured.
"""

from apps.common.database import replica_aliases
from apps.observability.health import checks as health


def replica_states():
    """[{alias, status, message, lag_seconds}] for every configured replica."""
    results = health.run_checks([health.ReplicaCheck(alias) for alias in replica_aliases()])
    return [
        {
            "alias": result.name,
            "status": result.status,
            "message": result.message,
            "lag_seconds": result.details.get("lag_seconds"),
        }
        for result in results
    ]
