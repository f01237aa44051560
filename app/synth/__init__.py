"""The synthetic bank: customers, products and an event log with realistic structure.

``generate_bank`` returns pandas frames for tests and notebooks; ``BankStream`` with
``write_stream`` writes large banks in bounded memory (what ``finrec generate`` does).
See docs/synthetic-bank.md for what the data contains and how it was made.
"""

from app.synth.bank import Bank, BankStream, Truth, bank_from_stream, generate_bank
from app.synth.config import SynthConfig
from app.synth.writer import FORMATS, Format, WrittenFile, write_bank, write_stream

__all__ = [
    "FORMATS",
    "Bank",
    "BankStream",
    "Format",
    "SynthConfig",
    "Truth",
    "WrittenFile",
    "bank_from_stream",
    "generate_bank",
    "write_bank",
    "write_stream",
]
