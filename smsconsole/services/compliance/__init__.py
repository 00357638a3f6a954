"""Compliance: country rules, senders and registrations, prices, and the preflight."""
