"""Idempotency-Key support: the first response to a key is stored and replayed to retries.

Records live in the database (unique per organization and key), so a retry that reaches another
process or server gets the same answer. The operation and its record are written in one
transaction: either both exist or neither does.
"""

import hashlib
import json

from django.db import IntegrityError, transaction

from apps.orders.models import IdempotencyRecord

MAX_KEY_LENGTH = 255


class KeyReusedWithDifferentRequest(Exception):
    pass


class _ConcurrentDuplicate(Exception):
    """Another request with the same key committed first; this one's writes are rolled back."""


def request_fingerprint(data):
    canonical = json.dumps(data, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()


def _replay(organization, key, fingerprint):
    record = IdempotencyRecord.objects.filter(organization=organization, key=key).first()
    if record is None:
        return None
    if record.request_hash != fingerprint:
        raise KeyReusedWithDifferentRequest
    return record.status_code, record.response_body


def run_once(organization, key, data, operation):
    """Run `operation() -> (status_code, body)` once per (organization, key).

    Returns (status_code, body, replayed). A retry with the same data gets the stored answer;
    the same key with different data raises KeyReusedWithDifferentRequest. Exceptions from
    `operation` propagate and store nothing, so a request that failed can be retried.
    """
    fingerprint = request_fingerprint(data)
    stored = _replay(organization, key, fingerprint)
    if stored is not None:
        return (*stored, True)
    try:
        with transaction.atomic():
            status_code, body = operation()
            try:
                with transaction.atomic():
                    IdempotencyRecord.objects.create(
                        organization=organization,
                        key=key,
                        request_hash=fingerprint,
                        status_code=status_code,
                        response_body=body,
                    )
            except IntegrityError:
                raise _ConcurrentDuplicate from None
    except _ConcurrentDuplicate:
        stored = _replay(organization, key, fingerprint)
        return (*stored, True)
    return status_code, body, False
