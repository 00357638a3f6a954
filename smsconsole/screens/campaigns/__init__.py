"""Campaigns: the list, the When/Who/What wizard and a campaign's page with its runs."""
