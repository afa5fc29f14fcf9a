"""The thin socket layer under the protocol: whole writes, whole messages, deadlines."""

from transport.stream import ConnectionClosed, Interrupted, MessageStream, wait_readable

__all__ = ["ConnectionClosed", "Interrupted", "MessageStream", "wait_readable"]
