"""The recommendation serving path: candidates, policy gate, diversity, promotions, reasons."""
