"""The business: validation, rules, SQL and transactions. Never imports Textual."""
