"""Live campaigns (single action, inaction within time, on a date): triggers from events, inaction
waits, date due times, their counts. `common` holds what every trigger shares."""
