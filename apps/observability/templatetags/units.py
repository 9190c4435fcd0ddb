"""`{% load units %}`: durations and sizes written as everywhere else (apps/common/units.py)."""

from django import template

from apps.common.units import format_bytes, format_milliseconds

register = template.Library()
register.filter("milliseconds", format_milliseconds)
register.filter("binary_size", format_bytes)
