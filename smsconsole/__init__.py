"""smsconsole: a terminal operator console for SMS campaigns."""

__version__ = "0.1.0"
