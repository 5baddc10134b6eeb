"""stop_signals_raise: SIGTERM and SIGINT become exceptions (with their exit codes) inside the block,
an ignored SIGINT stays ignored, a second signal cannot interrupt the cleanup, and the handlers
before the block come back after it."""

import os
import signal

import pytest

from skyaudio_cli.batch.signals import Interrupted, Terminated, exit_code_for, stop_signals_raise


@pytest.fixture(autouse=True)
def restore_handlers():
    before = {number: signal.getsignal(number) for number in (signal.SIGINT, signal.SIGTERM)}
    yield
    for number, handler in before.items():
        signal.signal(number, handler)


@pytest.mark.parametrize(
    ("number", "stop", "code"), [(signal.SIGTERM, Terminated, 143), (signal.SIGINT, Interrupted, 130)]
)
def test_signal_raises_and_a_second_one_is_ignored_during_cleanup(number, stop, code):
    signal.signal(signal.SIGINT, signal.default_int_handler)
    with pytest.raises(stop) as raised, stop_signals_raise():
        try:
            os.kill(os.getpid(), number)
        finally:
            os.kill(os.getpid(), signal.SIGTERM)  # arrives while cleaning up: must not raise again
            os.kill(os.getpid(), signal.SIGINT)
    assert exit_code_for(raised.value) == code
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL


def test_an_ignored_sigint_stays_ignored():
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # how a shell starts a background job
    with stop_signals_raise():
        assert signal.getsignal(signal.SIGINT) is signal.SIG_IGN
        os.kill(os.getpid(), signal.SIGINT)
    assert signal.getsignal(signal.SIGINT) is signal.SIG_IGN


def test_keyboard_interrupt_raised_by_code_is_130():
    assert exit_code_for(KeyboardInterrupt()) == 130
