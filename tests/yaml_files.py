"""The repository's YAML files (deploy manifests, compose, Prometheus rules), parsed once per test
process.

The deploy tests read the same files hundreds of times, and PyYAML's pure-Python parser spent
seconds of CPU on them per run. Here each file is parsed with libyaml where PyYAML has it, cached
by path and modification time, and handed out as a deep copy: a test may change what it gets
(the stack compresses rule durations in place) without another test seeing it.
"""

import copy
import functools
from pathlib import Path

import yaml

SAFE_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def load(path):
    """The one document of the YAML file at `path`, as yaml.safe_load gives it."""
    return copy.deepcopy(_documents(*_key(path))[0])


def load_all(path):
    """Every document of the YAML file at `path`, as list(yaml.safe_load_all(...)) gives them."""
    return copy.deepcopy(_documents(*_key(path)))


def load_text(text):
    """yaml.safe_load of a string (a document embedded in another, such as a ConfigMap's)."""
    return yaml.load(text, Loader=SAFE_LOADER)


def _key(path):
    path = Path(path).resolve()
    return path, path.stat().st_mtime_ns


@functools.cache
def _documents(path, modified):
    return list(yaml.load_all(path.read_text(), Loader=SAFE_LOADER))
