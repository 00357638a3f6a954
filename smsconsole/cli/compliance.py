"""`smsconsole senders`, `smsconsole templates` (India DLT templates, and `templates 10dlc` for US
10DLC campaigns) and `smsconsole prices`: the registrations and prices the compliance and cost
preflight checks a campaign against."""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from smsconsole.cli.output import (
    EXIT_FAILED,
    Commands,
    UsageError,
    add_actions,
    print_json,
)
from smsconsole.cli.runtime import ACTOR, with_runtime
from smsconsole.config import Config

SENDER_TYPES = ("long_code", "short_code", "toll_free", "alphanumeric")
SENDER_FLAGS = (("value", "--value"), ("type", "--type"), ("countries", "--countries"), ("brand_id", "--brand"),
                ("tendlc_campaign", "--10dlc-campaign"), ("tollfree_status", "--toll-free-status"),
                ("dlt_entity_id", "--dlt-entity"), ("note", "--note"))


def register(commands: Commands) -> None:
    _register_senders(commands)
    _register_templates(commands)
    _register_prices(commands)


def _sender_flags(parser: argparse.ArgumentParser, *, update: bool) -> None:
    if update:
        parser.add_argument("--value", help="the new number, short code or sender id")
    parser.add_argument("--type", choices=SENDER_TYPES, help="default: read from the value")
    parser.add_argument("--countries", metavar="US,CA", help="countries it may send to (default: any)")
    parser.add_argument("--brand", dest="brand_id", metavar="B", help="US 10DLC brand id")
    parser.add_argument("--10dlc-campaign", dest="tendlc_campaign", metavar="C",
                        help="US 10DLC campaign id (registered with: smsconsole templates 10dlc add)")
    parser.add_argument("--toll-free-status", dest="tollfree_status", choices=("verified", "pending", "rejected"),
                        help="toll-free verification status")
    parser.add_argument("--dlt-entity", dest="dlt_entity_id", metavar="E", help="India DLT principal entity id")
    parser.add_argument("--note", metavar="N")
    parser.add_argument("--json", action="store_true")


def _register_senders(commands: Commands) -> None:
    senders = commands.add_parser(
        "senders", help="the numbers and sender ids each provider sends from, with their registrations",
        description="A provider's senders: type (long code, short code, toll-free, alphanumeric), countries, and "
        "registrations (US 10DLC brand and campaign, toll-free verification, India DLT entity; the DLT header is the "
        "sender id). A provider's configured sender that is not registered is listed as 'configured'.",
    )
    senders.set_defaults(func=cmd_senders)
    s = add_actions(senders, "senders_command")
    lst = s.add_parser("list", help="every sender, registered and configured")
    lst.add_argument("--provider", metavar="P")
    lst.add_argument("--json", action="store_true")
    add = s.add_parser("add", help="register a sender of a provider")
    add.add_argument("provider")
    add.add_argument("value", help="a number in E.164 (+14155550100), a short code or an alphanumeric sender id")
    _sender_flags(add, update=False)
    upd = s.add_parser("update", help="change a sender ('' clears a field)")
    upd.add_argument("id", type=int)
    _sender_flags(upd, update=True)
    rm = s.add_parser("remove", help="remove a registered sender")
    rm.add_argument("id", type=int)


def _register_templates(commands: Commands) -> None:
    templates = commands.add_parser(
        "templates", help="registered templates: India DLT content templates and US 10DLC campaigns",
        description="India DLT templates (template id, header, category, content with {#var#}); "
        "'templates 10dlc' holds US 10DLC campaigns (brand, use case, sample messages).",
    )
    templates.set_defaults(func=cmd_templates)
    t = add_actions(templates, "templates_command")
    lst = t.add_parser("list", help="DLT templates")
    lst.add_argument("--header", metavar="H", help="only this header's")
    lst.add_argument("--json", action="store_true")
    add = t.add_parser("add", help="register a DLT template")
    add.add_argument("--id", dest="template_id", required=True, metavar="ID", help="the DLT content template id")
    add.add_argument("--header", required=True, metavar="H", help="the 6-character header (sender id)")
    add.add_argument("--category", required=True, metavar="C", help="transactional, service or promotional")
    add.add_argument("--content", required=True, metavar="TEXT", help="the registered text, {#var#} for each variable")
    add.add_argument("--name", metavar="N")
    add.add_argument("--entity", dest="entity_id", metavar="E", help="the DLT principal entity id")
    add.add_argument("--json", action="store_true")
    rm = t.add_parser("remove", help="remove a DLT template")
    rm.add_argument("id", help="the DLT template id")
    imp = t.add_parser("import", help="DLT templates from a CSV (the DLT portal's export columns are recognised)")
    imp.add_argument("file", type=Path)
    tendlc = t.add_parser("10dlc", help="US 10DLC campaigns")
    c = add_actions(tendlc, "tendlc_command")
    clst = c.add_parser("list", help="10DLC campaigns")
    clst.add_argument("--json", action="store_true")
    cadd = c.add_parser("add", help="register a 10DLC campaign")
    cadd.add_argument("--campaign", dest="campaign_id", required=True, metavar="C", help="the TCR campaign id")
    cadd.add_argument("--brand", dest="brand_id", required=True, metavar="B", help="the TCR brand id")
    cadd.add_argument("--use-case", dest="use_case", required=True, metavar="U", help="e.g. MARKETING, 2FA, MIXED")
    cadd.add_argument("--sample", dest="samples", action="append", default=[], metavar="TEXT",
                      help="a sample message registered with the campaign (repeat, up to 5)")
    cadd.add_argument("--description", metavar="D")
    cadd.add_argument("--status", choices=("active", "pending", "rejected", "expired"), default="active")
    cadd.add_argument("--json", action="store_true")
    crm = c.add_parser("remove", help="remove a 10DLC campaign no sender names")
    crm.add_argument("campaign")


def _register_prices(commands: Commands) -> None:
    prices = commands.add_parser(
        "prices", help="what each provider charges per country, for the cost estimate",
        description="Prices per provider and country, per segment or per message, for one sender type or any: "
        "set by hand, imported from a CSV, or fetched from Twilio's Pricing API.",
    )
    prices.set_defaults(func=cmd_prices)
    p = add_actions(prices, "prices_command")
    lst = p.add_parser("list", help="prices")
    lst.add_argument("--provider", metavar="P")
    lst.add_argument("--country", metavar="C")
    lst.add_argument("--json", action="store_true")
    st = p.add_parser("set", help="set a price by hand")
    st.add_argument("provider")
    st.add_argument("country")
    st.add_argument("amount")
    st.add_argument("--currency", default="USD")
    st.add_argument("--unit", choices=("segment", "message"), default="segment")
    st.add_argument("--sender-type", dest="sender_type", choices=SENDER_TYPES, default="",
                    help="the sender type it applies to (default: any)")
    st.add_argument("--json", action="store_true")
    rm = p.add_parser("remove", help="remove a price")
    rm.add_argument("id", type=int)
    imp = p.add_parser("import", help="prices from a CSV: provider,country,price[,currency][,unit][,sender_type]")
    imp.add_argument("file", type=Path)
    fetch = p.add_parser("fetch", help="fetch prices from the provider's pricing API (Twilio)")
    fetch.add_argument("provider")
    fetch.add_argument("--countries", required=True, metavar="US,CA")
    fetch.add_argument("--json", action="store_true")


# --- output ----------------------------------------------------------------------------------------


def table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> None:
    """Columns aligned to the widest cell; the last column is not padded."""
    widths = [max(len(str(r[i])) for r in [headers, *rows]) for i in range(len(headers))]
    for row in [headers, *rows]:
        print("  ".join(str(cell).ljust(widths[i]) if i < len(row) - 1 else str(cell)
                        for i, cell in enumerate(row)).rstrip())


def _registration(view: Any) -> str:
    parts = []
    if view.brand_id:
        parts.append(f"10DLC brand {view.brand_id}")
    if view.tendlc_campaign:
        parts.append(f"10DLC campaign {view.tendlc_campaign}")
    if view.tollfree_status:
        parts.append(f"toll-free {view.tollfree_status}")
    if view.dlt_entity_id:
        parts.append(f"DLT entity {view.dlt_entity_id}")
    return ", ".join(parts) or "-"


def _sender_row(view: Any) -> list[str]:
    return ["-" if view.id is None else str(view.id), view.provider, view.value, view.type.replace("_", " "),
            ",".join(view.countries) or "any", _registration(view),
            "configured, not registered" if view.implicit else (view.note or "")]


def _print_report(report: Any, what: str) -> int:
    print(f"{what}: {report.words()}")
    for line, reason in report.problems:
        print(f"  line {line}: {reason}")
    return EXIT_FAILED if report.problems else 0


async def cmd_senders(config: Config, args: argparse.Namespace) -> int:
    from smsconsole.services.compliance import senders as svc  # lazy: start-up

    action = args.senders_command
    changes = {field: getattr(args, field) for field, _ in SENDER_FLAGS if getattr(args, field, None) is not None}
    if action == "update" and not changes:
        raise UsageError("update: nothing to change; give " + ", ".join(flag for _, flag in SENDER_FLAGS))

    async def work(runtime: Any) -> int:
        if action == "list":
            async with runtime.factory() as session:
                views = await svc.list_senders(session, provider=args.provider)
            if args.json:
                print_json([dict(svc.sender_dict(v)) for v in views])
            elif not views:
                print("no senders yet; add one with: smsconsole senders add PROVIDER VALUE")
            else:
                table(["ID", "PROVIDER", "SENDER", "TYPE", "COUNTRIES", "REGISTRATION", "NOTE"],
                      [_sender_row(v) for v in views])
            return 0
        async with runtime.factory() as session, session.begin():
            if action == "remove":
                await svc.remove_sender(session, args.id, actor=ACTOR)
                print(f"removed sender {args.id}")
                return 0
            if action == "add":
                changes.pop("value", None)
                view = await svc.add_sender(session, provider=args.provider, value=args.value, actor=ACTOR, **changes)
            else:
                view = await svc.update_sender(session, args.id, actor=ACTOR, **changes)
        if args.json:
            print_json(dict(svc.sender_dict(view)))
        else:
            print(f"{'added' if action == 'add' else 'updated'} sender {view.id}: {view.provider} {view.value} "
                  f"({view.type.replace('_', ' ')}; countries {','.join(view.countries) or 'any'}; {_registration(view)})")
        return 0

    return await with_runtime(config, work)


def _short(text: str, width: int = 60) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= width else flat[: width - 1] + "…"


async def cmd_templates(config: Config, args: argparse.Namespace) -> int:
    from smsconsole.services.compliance import templates as svc  # lazy: start-up

    action = args.templates_command
    if action == "10dlc":
        return await _tendlc(config, args)

    async def work(runtime: Any) -> int:
        if action == "list":
            async with runtime.factory() as session:
                views = await svc.list_dlt_templates(session, header=args.header)
            if args.json:
                print_json(views)
            elif not views:
                print("no DLT templates yet; add one with: smsconsole templates add --id ID --header H --category C "
                      "--content TEXT, or import a CSV: smsconsole templates import FILE")
            else:
                table(["TEMPLATE ID", "HEADER", "CATEGORY", "VARS", "NAME", "CONTENT"],
                      [[v.template_id, v.header, v.category, str(v.variables), v.name or "", _short(v.content)]
                       for v in views])
            return 0
        async with runtime.factory() as session, session.begin():
            if action == "remove":
                await svc.remove_dlt_template(session, args.id, actor=ACTOR)
                print(f"removed DLT template {args.id}")
                return 0
            if action == "import":
                report = await svc.import_dlt_templates(session, args.file, actor=ACTOR)
            else:
                view = await svc.add_dlt_template(session, template_id=args.template_id, header=args.header,
                                                  category=args.category, content=args.content, name=args.name,
                                                  entity_id=args.entity_id, actor=ACTOR)
        if action == "import":
            return _print_report(report, f"DLT templates from {args.file}")
        if args.json:
            print_json(view)
        else:
            print(f"added DLT template {view.template_id} ({view.category}, header {view.header}, "
                  f"{view.variables} variable{'s' if view.variables != 1 else ''})")
        return 0

    return await with_runtime(config, work)


async def _tendlc(config: Config, args: argparse.Namespace) -> int:
    from smsconsole.services.compliance import templates as svc  # lazy: start-up

    action = args.tendlc_command

    async def work(runtime: Any) -> int:
        if action == "list":
            async with runtime.factory() as session:
                views = await svc.list_tendlc_campaigns(session)
            if args.json:
                print_json(views)
            elif not views:
                print("no 10DLC campaigns yet; add one with: smsconsole templates 10dlc add --campaign C --brand B "
                      "--use-case U")
            else:
                table(["CAMPAIGN", "BRAND", "USE CASE", "STATUS", "SAMPLES", "DESCRIPTION"],
                      [[v.campaign_id, v.brand_id, v.use_case, v.status, str(len(v.samples)), _short(v.description or "")]
                       for v in views])
            return 0
        async with runtime.factory() as session, session.begin():
            if action == "remove":
                await svc.remove_tendlc_campaign(session, args.campaign, actor=ACTOR)
                print(f"removed 10DLC campaign {args.campaign}")
                return 0
            view = await svc.add_tendlc_campaign(session, campaign_id=args.campaign_id, brand_id=args.brand_id,
                                                 use_case=args.use_case, samples=args.samples,
                                                 description=args.description, status=args.status, actor=ACTOR)
        if args.json:
            print_json(view)
        else:
            print(f"added 10DLC campaign {view.campaign_id} (brand {view.brand_id}, {view.use_case}, "
                  f"{len(view.samples)} sample{'s' if len(view.samples) != 1 else ''})")
        return 0

    return await with_runtime(config, work)


def _price_row(view: Any) -> list[str]:
    when = view.fetched_at or view.updated_at
    return [str(view.id), view.provider, view.country, view.sender_type.replace("_", " ") or "any",
            f"{view.amount:g} {view.currency}", f"per {view.unit}", view.source,
            f"{'fetched ' if view.fetched_at else ''}{when:%Y-%m-%d}"]


PRICE_HEADERS = ["ID", "PROVIDER", "COUNTRY", "SENDER TYPE", "PRICE", "UNIT", "SOURCE", "DATE"]


async def cmd_prices(config: Config, args: argparse.Namespace) -> int:
    from smsconsole.services.compliance import prices as svc  # lazy: start-up

    action = args.prices_command

    async def work(runtime: Any) -> int:
        if action == "list":
            async with runtime.factory() as session:
                views = await svc.list_prices(session, provider=args.provider, country=args.country)
            if args.json:
                print_json([svc.price_dict(v) for v in views])
            elif not views:
                print("no prices yet; set one with: smsconsole prices set PROVIDER COUNTRY AMOUNT, import a CSV "
                      "(smsconsole prices import FILE) or fetch them (smsconsole prices fetch PROVIDER --countries US)")
            else:
                table(PRICE_HEADERS, [_price_row(v) for v in views])
            return 0
        if action == "fetch":
            import httpx  # lazy: start-up

            async with httpx.AsyncClient(timeout=config.send_timeout_seconds) as client, \
                    runtime.factory() as session, session.begin():
                fetched = await svc.fetch_prices(session, args.provider, countries=args.countries, box=runtime.box,
                                                 client=client, actor=ACTOR)
            if args.json:
                print_json({"provider": fetched.provider, "fetched_at": fetched.fetched_at.isoformat(),
                            "prices": [svc.price_dict(v) for v in fetched.prices],
                            "problems": [{"country": c, "reason": r} for c, r in fetched.problems]})
            else:
                print(f"fetched {fetched.words()}")
                if fetched.prices:
                    table(PRICE_HEADERS, [_price_row(v) for v in fetched.prices])
                for country, reason in fetched.problems:
                    print(f"  {country}: {reason}")
            return EXIT_FAILED if fetched.problems else 0
        async with runtime.factory() as session, session.begin():
            if action == "remove":
                await svc.remove_price(session, args.id, actor=ACTOR)
                print(f"removed price {args.id}")
                return 0
            if action == "import":
                report = await svc.import_prices(session, args.file, actor=ACTOR)
            else:
                view = await svc.set_price(session, provider=args.provider, country=args.country, amount=args.amount,
                                           currency=args.currency, unit=args.unit, sender_type=args.sender_type,
                                           actor=ACTOR)
        if action == "import":
            return _print_report(report, f"prices from {args.file}")
        if args.json:
            print_json(svc.price_dict(view))
        else:
            print(f"set price {view.id}: {view.provider} {view.country} "
                  f"{view.sender_type.replace('_', ' ') or 'any sender'} {view.amount:g} {view.currency} per {view.unit}")
        return 0

    return await with_runtime(config, work, need_secrets=action == "fetch")
