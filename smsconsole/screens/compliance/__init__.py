"""Settings → Compliance: row words and service calls of the panel in screens/settings_compliance.py."""
