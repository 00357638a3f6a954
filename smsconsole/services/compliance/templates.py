"""Registered templates: India DLT content templates (template id, the header they belong to, the
category, the text with {#var#} placeholders) and US 10DLC campaigns (brand, use case, sample
messages). Add, change, remove, and import DLT templates from a CSV (the DLT portals' export
columns are recognised). The caller commits; every change is audited."""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from smsconsole import clock
from smsconsole.models.compliance import DltTemplate, Sender, TenDlcCampaign
from smsconsole.services import audit
from smsconsole.services.compliance.csvfile import read_csv
from smsconsole.services.errors import Conflict, NotFound, ValidationError

DLT_CATEGORIES = ("transactional", "service", "promotional")
TENDLC_STATUSES = ("active", "pending", "rejected", "expired")
# The Campaign Registry's use cases: standard, then special (need vetting or carrier approval).
TENDLC_USE_CASES = (
    "2FA", "ACCOUNT_NOTIFICATION", "CUSTOMER_CARE", "DELIVERY_NOTIFICATION", "FRAUD_ALERT", "HIGHER_EDUCATION",
    "LOW_VOLUME", "MARKETING", "MIXED", "POLLING_VOTING", "PUBLIC_SERVICE_ANNOUNCEMENT", "SECURITY_ALERT",
    "AGENTS_FRANCHISES", "CARRIER_EXEMPT", "CHARITY", "EMERGENCY", "K12_EDUCATION", "PLATFORM_FREE_TRIAL",
    "POLITICAL", "PROXY", "SOCIAL", "SOLE_PROPRIETOR", "SWEEPSTAKE", "UCAAS_HIGH", "UCAAS_LOW",
)
MAX_SAMPLES = 5  # TCR takes up to five sample messages per campaign
MAX_SAMPLE = 1024
VARIABLE = re.compile(r"\{#\s*var\s*#\}", re.IGNORECASE)  # DLT's placeholder, spaces inside tolerated
DLT_ID = re.compile(r"\d{1,30}")
DLT_HEADER = re.compile(r"[A-Za-z0-9]{6}")
REGISTRATION_ID = re.compile(r"[A-Za-z0-9_.:-]{1,64}")
MAX_NAME = 120

# CSV column names as the DLT portals (Jio, Airtel, Vi, BSNL, …) export them, normalized
# (lower case, runs of other characters as '_'), for each of our fields.
DLT_COLUMNS = {
    "template_id": ("template_id", "content_template_id", "templateid", "dlt_template_id", "dlt_ct_id", "ct_id", "id"),
    "header": ("header", "headers", "header_name", "sender_id", "sender", "header_id"),
    "category": ("category", "template_type", "content_type", "type", "template_category"),
    "content": ("content", "template_content", "template", "message", "template_message", "body", "text"),
    "name": ("name", "template_name", "title"),
    "entity_id": ("entity_id", "pe_id", "principal_entity_id", "dlt_entity_id", "peid"),
}


@dataclass(frozen=True)
class ImportReport:
    added: int
    updated: int
    problems: tuple[tuple[int, str], ...]  # (line, reason)

    def words(self) -> str:
        text = f"{self.added} added, {self.updated} updated"
        return text + (f", {len(self.problems)} row{'s' if len(self.problems) != 1 else ''} refused" if self.problems else "")


@dataclass(frozen=True)
class DltTemplateView:
    id: int
    template_id: str
    name: str | None
    header: str
    entity_id: str | None
    category: str
    content: str
    variables: int


@dataclass(frozen=True)
class TenDlcCampaignView:
    id: int
    campaign_id: str
    brand_id: str
    use_case: str
    description: str | None
    samples: tuple[str, ...]
    status: str


def _optional(value: Any) -> str | None:
    text = str(value).strip() if value is not None else ""
    return text or None


def _dlt_view(row: DltTemplate) -> DltTemplateView:
    return DltTemplateView(row.id, row.template_id, row.name, row.header, row.entity_id, row.category, row.content,
                           len(VARIABLE.findall(row.content)))


def _tendlc_view(row: TenDlcCampaign) -> TenDlcCampaignView:
    return TenDlcCampaignView(row.id, row.campaign_id, row.brand_id, row.use_case, row.description,
                              tuple(str(s) for s in row.samples or ()), row.status)


# --- DLT templates ---------------------------------------------------------------------------------


async def list_dlt_templates(session: AsyncSession, *, header: str | None = None) -> list[DltTemplateView]:
    """Every DLT template by header then template id; only one header's when given (any case)."""
    query = select(DltTemplate).order_by(DltTemplate.header, DltTemplate.template_id)
    rows = [r for r in await session.scalars(query.execution_options(populate_existing=True))
            if header is None or r.header.upper() == header.strip().upper()]
    return [_dlt_view(r) for r in rows]


def category_word(value: str | None) -> str | None:
    """A DLT category as typed or exported ("Service Implicit", "SE", "Promotional") -> ours."""
    text = (value or "").strip().lower().replace("-", " ").replace("_", " ")
    if not text:
        return None
    if text.startswith("service") or text in ("si", "se"):
        return "service"
    if text.startswith("trans"):
        return "transactional"
    if text.startswith("promo"):
        return "promotional"
    return text


_REGISTRATION_WORDS = "up to 64 letters, digits, '-', '_', '.' or ':'"


def _required(fields: dict[str, Any], key: str, pattern: re.Pattern[str], problems: list[tuple[str, str]],
              missing: str, bad: str) -> str | None:
    """The field's text (None when empty); a problem when it is missing ("is required: <missing>")
    or does not match `pattern` (`bad`)."""
    value = _optional(fields.get(key))
    if value is None:
        problems.append((key, f"is required: {missing}"))
    elif not pattern.fullmatch(value):
        problems.append((key, bad))
    return value


def _check_dlt(fields: dict[str, Any]) -> tuple[dict[str, Any], list[tuple[str, str]]]:
    problems: list[tuple[str, str]] = []
    template_id = _required(fields, "template_id", DLT_ID, problems, "the DLT content template id",
                            "a DLT template id is digits (up to 30)")
    header = _required(fields, "header", DLT_HEADER, problems,
                       "the 6-character header (sender id) the template is registered under",
                       "a DLT header is 6 letters or digits")
    category = category_word(fields.get("category"))
    if category is None:
        problems.append(("category", f"is required: one of {', '.join(DLT_CATEGORIES)}"))
    elif category not in DLT_CATEGORIES:
        problems.append(("category", f"{category!r} is not a DLT category; use one of {', '.join(DLT_CATEGORIES)}"))
    content = str(fields.get("content") or "").strip()
    if not VARIABLE.sub("", content).strip():
        problems.append(("content", "must contain text, not only {#var#} placeholders"))
    name = _optional(fields.get("name"))
    if name is not None and len(name) > MAX_NAME:
        problems.append(("name", f"at most {MAX_NAME} characters"))
    entity = _optional(fields.get("entity_id"))
    if entity is not None and not DLT_ID.fullmatch(entity):
        problems.append(("entity_id", "a DLT principal entity id is digits (up to 30)"))
    clean = {"template_id": template_id, "header": header.upper() if header and not header.isdigit() else header,
             "category": category, "content": content, "name": name, "entity_id": entity}
    return clean, problems


async def add_dlt_template(
    session: AsyncSession, *, template_id: str, header: str, category: str, content: str, name: str | None = None,
    entity_id: str | None = None, actor: str,
) -> DltTemplateView:
    clean, problems = _check_dlt({"template_id": template_id, "header": header, "category": category,
                                  "content": content, "name": name, "entity_id": entity_id})
    if not problems and await session.scalar(select(DltTemplate.id).where(DltTemplate.template_id == clean["template_id"])):
        problems.append(("template_id", f"template {clean['template_id']} is already registered; change it instead"))
    if problems:
        raise ValidationError(problems)
    now = clock.now()
    row = DltTemplate(created_at=now, updated_at=now, **clean)
    session.add(row)
    await session.flush()
    await audit.record(session, actor, "dlt_template.add", row.template_id, header=row.header, category=row.category)
    return _dlt_view(row)


async def _by_ref(session: AsyncSession, model: Any, column: Any, ref: int | str, what: str) -> Any:
    """A row by our id (int) or by its registered id (str: the DLT template id, the 10DLC campaign id)."""
    row = await session.get(model, ref) if isinstance(ref, int) else await session.scalar(
        select(model).where(column == ref.strip()))
    if row is None:
        raise NotFound(f"no {what} {ref}")
    return row


def _apply(row: Any, names: tuple[str, ...], clean: dict[str, Any], current: dict[str, Any]) -> list[str]:
    """Set the fields that changed; returns their names (for the audit entry)."""
    changed = sorted(n for n in names if clean[n] != current[n])
    for n in changed:
        setattr(row, n, clean[n])
    row.updated_at = clock.now()
    return changed


async def _dlt_row(session: AsyncSession, template: int | str) -> DltTemplate:
    return await _by_ref(session, DltTemplate, DltTemplate.template_id, template, "DLT template")  # type: ignore[no-any-return]


async def update_dlt_template(session: AsyncSession, template: int | str, *, actor: str, **changes: Any) -> DltTemplateView:
    """Change fields (template_id, header, category, content, name, entity_id) of a template, found
    by our id (int) or its DLT template id (str)."""
    row = await _dlt_row(session, template)
    names = ("template_id", "header", "category", "content", "name", "entity_id")
    if unknown := sorted(set(changes) - set(names)):
        raise ValidationError([(n, "cannot be changed on a DLT template") for n in unknown])
    current = {n: getattr(row, n) for n in names}
    clean, problems = _check_dlt({**current, **changes})
    if not problems and clean["template_id"] != row.template_id and await session.scalar(
            select(DltTemplate.id).where(DltTemplate.template_id == clean["template_id"])):
        problems.append(("template_id", f"template {clean['template_id']} is already registered"))
    if problems:
        raise ValidationError(problems)
    changed = _apply(row, names, clean, current)
    await session.flush()
    await audit.record(session, actor, "dlt_template.update", row.template_id, changed=changed)
    return _dlt_view(row)


async def remove_dlt_template(session: AsyncSession, template: int | str, *, actor: str) -> None:
    row = await _dlt_row(session, template)
    await session.delete(row)
    await session.flush()
    await audit.record(session, actor, "dlt_template.remove", row.template_id, header=row.header)


def _dlt_rows(path: Path) -> Iterator[tuple[int, dict[str, str] | str]]:
    yield from read_csv(path, DLT_COLUMNS, required=("template_id", "header", "content"))


async def import_dlt_templates(session: AsyncSession, path: Path, *, actor: str) -> ImportReport:
    """DLT templates from a CSV with a header row: template_id, header, category, content[, name][,
    entity_id] (or the DLT portals' export names: "Template ID", "Header", "Template Type",
    "Template Content", "Template Name", "PE ID", …). A template id already registered is updated;
    good rows are kept, each bad row is reported with its line and reason."""
    added = updated = 0
    problems: list[tuple[int, str]] = []
    existing = {r.template_id: r for r in await session.scalars(select(DltTemplate))}
    now = clock.now()
    for line, record in _dlt_rows(path):
        if isinstance(record, str):
            problems.append((line, record))
            continue
        clean, bad = _check_dlt(record)
        if bad:
            problems.append((line, "; ".join(f"{field}: {reason}" for field, reason in bad)))
            continue
        row = existing.get(clean["template_id"])
        if row is None:
            row = DltTemplate(created_at=now, updated_at=now, **clean)
            session.add(row)
            existing[row.template_id] = row
            added += 1
        else:
            for n, v in clean.items():
                if n in ("name", "entity_id") and v is None:
                    continue  # a column the file lacks keeps what was registered
                setattr(row, n, v)
            row.updated_at = now
            updated += 1
    await session.flush()
    await audit.record(session, actor, "dlt_template.import", path.name, added=added, updated=updated,
                       refused=len(problems))
    return ImportReport(added, updated, tuple(problems))


# --- 10DLC campaigns -------------------------------------------------------------------------------


async def list_tendlc_campaigns(session: AsyncSession) -> list[TenDlcCampaignView]:
    rows = await session.scalars(select(TenDlcCampaign).order_by(TenDlcCampaign.campaign_id)
                                 .execution_options(populate_existing=True))
    return [_tendlc_view(r) for r in rows]


def _check_tendlc(fields: dict[str, Any]) -> tuple[dict[str, Any], list[tuple[str, str]]]:
    problems: list[tuple[str, str]] = []
    campaign = _required(fields, "campaign_id", REGISTRATION_ID, problems,
                         "the campaign id The Campaign Registry gave (e.g. CX4B2ZQ)", _REGISTRATION_WORDS)
    brand = _required(fields, "brand_id", REGISTRATION_ID, problems, "the 10DLC brand id (e.g. BZ3F9QX)",
                      _REGISTRATION_WORDS)
    use_case = (_optional(fields.get("use_case")) or "").upper().replace(" ", "_").replace("-", "_")
    if not use_case:
        problems.append(("use_case", "is required: e.g. MARKETING, ACCOUNT_NOTIFICATION, 2FA"))
    elif use_case not in TENDLC_USE_CASES:
        problems.append(("use_case", f"{use_case!r} is not a 10DLC use case; use one of {', '.join(TENDLC_USE_CASES)}"))
    raw = fields.get("samples") or ()
    samples = [str(s).strip() for s in ([raw] if isinstance(raw, str) else raw) if str(s).strip()]
    if len(samples) > MAX_SAMPLES:
        problems.append(("samples", f"at most {MAX_SAMPLES} sample messages; {len(samples)} given"))
    elif any(len(s) > MAX_SAMPLE for s in samples):
        problems.append(("samples", f"a sample message is at most {MAX_SAMPLE} characters"))
    status = (_optional(fields.get("status")) or "active").lower()
    if status not in TENDLC_STATUSES:
        problems.append(("status", f"must be one of {', '.join(TENDLC_STATUSES)}"))
    clean = {"campaign_id": campaign, "brand_id": brand, "use_case": use_case, "samples": samples,
             "description": _optional(fields.get("description")), "status": status}
    return clean, problems


async def add_tendlc_campaign(
    session: AsyncSession, *, campaign_id: str, brand_id: str, use_case: str, samples: Iterable[str] = (),
    description: str | None = None, status: str = "active", actor: str,
) -> TenDlcCampaignView:
    clean, problems = _check_tendlc({"campaign_id": campaign_id, "brand_id": brand_id, "use_case": use_case,
                                     "samples": list(samples), "description": description, "status": status})
    if not problems and await session.scalar(select(TenDlcCampaign.id).where(TenDlcCampaign.campaign_id == clean["campaign_id"])):
        problems.append(("campaign_id", f"campaign {clean['campaign_id']} is already registered"))
    if problems:
        raise ValidationError(problems)
    now = clock.now()
    row = TenDlcCampaign(created_at=now, updated_at=now, **clean)
    session.add(row)
    await session.flush()
    await audit.record(session, actor, "tendlc_campaign.add", row.campaign_id, brand_id=row.brand_id, use_case=row.use_case)
    return _tendlc_view(row)


async def _tendlc_row(session: AsyncSession, campaign: int | str) -> TenDlcCampaign:
    return await _by_ref(session, TenDlcCampaign, TenDlcCampaign.campaign_id, campaign, "10DLC campaign")  # type: ignore[no-any-return]


async def update_tendlc_campaign(session: AsyncSession, campaign: int | str, *, actor: str, **changes: Any) -> TenDlcCampaignView:
    """Change fields (brand_id, use_case, samples, description, status) of a 10DLC campaign, found by
    our id (int) or its campaign id (str). The campaign id itself does not change (senders name it)."""
    row = await _tendlc_row(session, campaign)
    names = ("brand_id", "use_case", "samples", "description", "status")
    if unknown := sorted(set(changes) - set(names)):
        raise ValidationError([(n, "cannot be changed on a 10DLC campaign") for n in unknown])
    current = {"campaign_id": row.campaign_id, **{n: getattr(row, n) for n in names}}
    clean, problems = _check_tendlc({**current, **changes})
    if problems:
        raise ValidationError(problems)
    changed = _apply(row, names, clean, current)
    await session.flush()
    await audit.record(session, actor, "tendlc_campaign.update", row.campaign_id, changed=changed)
    return _tendlc_view(row)


async def remove_tendlc_campaign(session: AsyncSession, campaign: int | str, *, actor: str) -> None:
    """Remove a 10DLC campaign no sender names (Conflict listing the senders otherwise)."""
    row = await _tendlc_row(session, campaign)
    users = list(await session.scalars(select(Sender.value).where(Sender.tendlc_campaign == row.campaign_id)
                                       .order_by(Sender.value)))
    if users:
        raise Conflict(f"10DLC campaign {row.campaign_id} is set on sender{'s' if len(users) > 1 else ''} "
                       f"{', '.join(users)}; clear it there first")
    await session.delete(row)
    await session.flush()
    await audit.record(session, actor, "tendlc_campaign.remove", row.campaign_id)

