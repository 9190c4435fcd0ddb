"""Draining: from SIGTERM on, this worker reports not ready while it finishes in-flight requests.

gunicorn sends SIGTERM to each worker on graceful shutdown; the worker stops accepting
connections and finishes what it has. `install_drain_signal_handler` runs in each worker
(gunicorn.conf.py, `post_worker_init`) and wraps gunicorn's own handler: it flips the flag, then
lets gunicorn do exactly what it did before.
"""

import signal
import threading

_draining = threading.Event()


def is_draining():
    return _draining.is_set()


def start_draining():
    _draining.set()


def install_drain_signal_handler():
    """Flip the draining flag on SIGTERM, then chain to the handler installed before."""
    previous_handler = signal.getsignal(signal.SIGTERM)

    def handle_sigterm(signum, frame):
        start_draining()
        if callable(previous_handler):
            previous_handler(signum, frame)
        elif previous_handler == signal.SIG_DFL:
            # Nothing was installed: keep the default meaning of SIGTERM, which is to exit.
            signal.signal(signal.SIGTERM, signal.SIG_DFL)
            signal.raise_signal(signal.SIGTERM)

    signal.signal(signal.SIGTERM, handle_sigterm)
    # signal.signal() makes SIGTERM interrupt system calls again; gunicorn turned that off so
    # that the signal does not disturb requests in flight.
    signal.siginterrupt(signal.SIGTERM, False)
    return handle_sigterm
