"""The two ways a message can be refused."""


class ProtocolError(ValueError):
    """The peer sent something that is not a valid message; the text says what and where."""


class MessageTooLarge(ProtocolError):
    """A message longer than MAX_MESSAGE_BYTES: on input the connection cannot be resynced."""
