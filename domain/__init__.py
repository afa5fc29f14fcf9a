"""The lottery's domain model, shared by the server, the client and storage."""

from domain.bet import (
    DEFAULT_WINNING_NUMBER,
    Bet,
    InvalidBet,
    has_won,
    parse_birthdate,
    parse_non_negative_int,
)

__all__ = [
    "DEFAULT_WINNING_NUMBER",
    "Bet",
    "InvalidBet",
    "has_won",
    "parse_birthdate",
    "parse_non_negative_int",
]
