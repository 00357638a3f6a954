"""`smsconsole campaigns preflight CAMPAIGN [--json]`: the compliance and cost preflight of a
campaign's next run (services/compliance/preflight.py). Exits 1 when a finding blocks it."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from smsconsole.cli.output import EXIT_FAILED, print_json


async def preflight_command(factory: Any, args: argparse.Namespace, document: Any) -> int:
    from smsconsole import clock  # lazy: start-up
    from smsconsole.services.campaigns import crud
    from smsconsole.services.campaigns.definition import parse_document
    from smsconsole.services.compliance.preflight import (
        preflight_campaign,
        preflight_dict,
    )
    from smsconsole.services.compliance.words import preflight_lines
    from smsconsole.services.settings import get_settings

    async with factory() as session:
        view = await crud.get_campaign(session, args.ref)
        settings = await get_settings(session)
        parsed, _ = parse_document(view.document, default_timezone=settings["default_timezone"], strict=False)
        checked = await preflight_campaign(session, parsed, campaign_id=view.id, now=clock.now())
    if args.json:
        print_json(preflight_dict(checked))
    else:
        print(f"{view.code} {view.name!r}")
        for line in preflight_lines(checked):
            print(line)
    return EXIT_FAILED if checked.blocking else 0


def print_blocked(exc: Any) -> None:
    """A schedule refused by its preflight: every finding on stderr before the one-line error."""
    from smsconsole.services.compliance.words import finding_line

    for finding in exc.preflight.findings:
        print(finding_line(finding), file=sys.stderr)
