from tests.orders.conftest import (  # noqa: F401 - shared fixtures
    _empty_cache,
    api,
    organization,
    other_organization,
)
