"""Select builders shared by two or more services."""
