"""What can go wrong with a message: the peer sent garbage (ProtocolError and its kinds), or
our own code asked for a message the protocol cannot carry (CannotEncode, a bug)."""


class ProtocolError(ValueError):
    """The peer sent something that is not a valid message; the text says what and where."""


class MessageTooLarge(ProtocolError):
    """A message longer than MAX_MESSAGE_BYTES: on input the connection cannot be resynced."""


class CannotEncode(ValueError):
    """Our own misuse: encoding a message over MAX_MESSAGE_BYTES (callers must split it)."""
