"""Settings of bench/orders_list.py: the project's, with the plain comparison view mounted."""

from project.settings import *  # noqa: F403

ROOT_URLCONF = "bench.orders_list_urls"
