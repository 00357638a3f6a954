"""Tracked short links: `{{ url | track }}` in a campaign body becomes `<domain>/<code>`, one link
per recipient and message, and the listener's `GET /{code}` redirects to the long URL and records
the click.

- **Codes** are CODE_LENGTH characters of the 62-letter alphabet (0-9, A-Z, a-z) drawn with
  `secrets` (62^7 ≈ 3.5·10^12 codes: with ten million stored, a guess finds one once in about
  350,000 tries); never sequential. `short_links.code` is unique: a code already taken is drawn
  again before the insert (`create_links`), and a collision racing another engine fails the
  transaction, which the engine retries with fresh codes.
- **Making them**: the engine renders a message at claim (engine/personalize.py) with a
  `MessageLinks`, which hands out codes (re-using the links already made for that message, so a
  re-render sends the same text) and remembers the new ones; the batch's links are written with
  its rendered bodies, in one transaction. Previews, test sends and the preflight's sample render
  with `PreviewLinks`: the domain and a placeholder code of the real length, so characters and
  segments count right. Without a domain in Settings, `track` is a render problem (NO_DOMAIN).
- **Opening them** (`open_link`): an unknown code is "missing", one past its `expires_at` (made
  + the retention in Settings) "expired". A link preview (a known preview bot's User-Agent, or a
  HEAD request) counts in `previews` only; a click adds to `clicks` and records a `link_click`
  event on the profile (properties campaign "C12", run, variant, url) that goes to conversions
  and live triggers like any other event.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from smsconsole import clock
from smsconsole.models import ShortLink

ALPHABET = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
CODE_LENGTH = 7
_SPACE = len(ALPHABET) ** CODE_LENGTH
CODE_PATTERN = re.compile(r"[0-9A-Za-z]{7,16}")
PLACEHOLDER_CODE = "Ab3x9Kq"  # what previews show in place of a code: the real length
MAX_URL = 2048  # characters of a long URL
CLICK_EVENT = "link_click"
DEFAULT_RETENTION_DAYS = 90
NO_DOMAIN = "set the short-link domain in Settings: | track makes links on it"

# User-Agent words of link-preview fetchers (chat apps and social sites unfurling a link, search
# crawlers, Apple's iMessage preview): their requests are previews, not clicks.
PREVIEW_AGENTS = re.compile(
    r"facebookexternalhit|facebookcatalog|Facebot|Twitterbot|Slackbot|Slack-ImgProxy|WhatsApp|TelegramBot|"
    r"Discordbot|LinkedInBot|SkypeUriPreview|Googlebot|Google-InspectionTool|AdsBot-Google|bingbot|BingPreview|"
    r"Applebot|Pinterestbot|redditbot|Embedly|vkShare|W3C_Validator|Viber|SnapchatAds|Iframely|"
    r"MicrosoftPreview|Yahoo! Slurp|YandexBot|DuckDuckBot|Baiduspider|ia_archiver|\bbot\b|crawler|spider",
    re.IGNORECASE)


class LinkProblem(Exception):
    """`track` cannot make a link: no domain in Settings, or the value is not a URL."""


def new_code() -> str:
    """A random code: CODE_LENGTH letters of ALPHABET, every code equally likely (`secrets`)."""
    number = secrets.randbelow(_SPACE)
    letters = []
    for _ in range(CODE_LENGTH):
        number, digit = divmod(number, 62)
        letters.append(ALPHABET[digit])
    return "".join(letters)


def is_code(text: str) -> bool:
    return bool(CODE_PATTERN.fullmatch(text))


def is_preview(user_agent: str | None, method: str) -> bool:
    """A link preview rather than a person: HEAD, no User-Agent, or a known preview bot's."""
    return method == "HEAD" or not (user_agent or "").strip() or bool(PREVIEW_AGENTS.search(user_agent or ""))


def check_url(value: Any) -> str:
    """The long URL `track` was given, or LinkProblem (the reason names no part of it)."""
    url = "" if value is None else str(value).strip()
    if not url:
        raise LinkProblem("track was given an empty URL")
    if len(url) > MAX_URL:
        raise LinkProblem(f"track was given a URL of {len(url):,} characters; at most {MAX_URL:,}")
    try:
        parts = urlsplit(url)
    except ValueError:
        raise LinkProblem("track was given a value that is not a URL") from None
    if parts.scheme.lower() not in ("http", "https") or not parts.hostname or any(c.isspace() for c in url):
        raise LinkProblem("track needs an http(s) URL with a host and no spaces")
    return url


# --- settings -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class LinkSettings:
    domain: str | None  # "https://go.example.com" (no trailing slash); None: not set
    retention_days: int


def link_settings_from(values: Mapping[str, Any]) -> LinkSettings:
    """The link settings from services.settings.get_settings' values."""
    from smsconsole.services.settings import SETTINGS

    domain, reason = SETTINGS["link_domain"].parse(str(values.get("link_domain") or "").strip())
    days, bad = SETTINGS["link_retention_days"].parse(str(values.get("link_retention_days") or "").strip())
    return LinkSettings(domain=(domain or None) if not reason else None,
                        retention_days=int(days) if days and not bad else DEFAULT_RETENTION_DAYS)


async def link_settings(session: AsyncSession) -> LinkSettings:
    from smsconsole.services.settings import get_settings

    return link_settings_from(await get_settings(session))


# --- rendering ------------------------------------------------------------------------------------


class PreviewLinks:
    """`track` for previews, test sends and estimates: the domain and PLACEHOLDER_CODE."""

    def __init__(self, domain: str | None) -> None:
        self.domain = domain

    def shorten(self, value: Any) -> str:
        check_url(value)
        if not self.domain:
            raise LinkProblem(NO_DOMAIN)
        return f"{self.domain}/{PLACEHOLDER_CODE}"


async def preview_links(session: AsyncSession) -> PreviewLinks:
    return PreviewLinks((await link_settings(session)).domain)


@dataclass(frozen=True)
class Made:
    """A link made for a message: its place in the message, code and long URL."""

    position: int
    code: str
    url: str


@dataclass
class MessageLinks:
    """`track` for one message being sent: the n-th link re-uses the message's n-th link already
    made for the same URL (a re-render sends the same text), else gets a new code."""

    domain: str | None
    existing: Sequence[Made] = ()
    made: list[Made] = field(default_factory=list)  # new links, to be written
    _used: int = 0

    def shorten(self, value: Any) -> str:
        url = check_url(value)
        if not self.domain:
            raise LinkProblem(NO_DOMAIN)
        index = self._used
        self._used += 1
        if index < len(self.existing) and self.existing[index].url == url:
            return f"{self.domain}/{self.existing[index].code}"
        taken = {m.position for m in self.existing} | {m.position for m in self.made}
        position = max(taken, default=-1) + 1
        code = new_code()
        self.made.append(Made(position, code, url))
        return f"{self.domain}/{code}"

    def reset(self) -> None:
        """Forget what a failed render made (the message is rendered again from scratch)."""
        self.made.clear()
        self._used = 0


async def existing_links(session: AsyncSession, message_ids: Iterable[int]) -> dict[int, list[Made]]:
    """message id -> its links already made, by position (one query)."""
    ids = sorted(set(message_ids))
    if not ids:
        return {}
    found: dict[int, list[Made]] = {}
    rows = await session.execute(select(ShortLink.message_id, ShortLink.position, ShortLink.code, ShortLink.url)
                                 .where(ShortLink.message_id.in_(ids)).order_by(ShortLink.message_id,
                                                                                 ShortLink.position))
    for row in rows:
        found.setdefault(row.message_id, []).append(Made(row.position, row.code, row.url))
    return found


@dataclass
class NewLink:
    """A link to write: what `create_links` inserts (its code may be redrawn)."""

    code: str
    url: str
    message_id: int | None
    position: int
    profile_id: int | None
    campaign_id: int | None
    run_id: int | None
    variant: str | None


async def taken_codes(session: AsyncSession, codes: Iterable[str]) -> set[str]:
    wanted = sorted(set(codes))
    found: set[str] = set()
    for start in range(0, len(wanted), 500):
        found.update(await session.scalars(select(ShortLink.code).where(ShortLink.code.in_(wanted[start:start + 500]))))
    return found


async def create_links(session: AsyncSession, links: Sequence[NewLink], *, retention_days: int,
                       now: datetime | None = None) -> dict[str, str]:
    """Insert `links` in one executemany, after redrawing any code already taken (stored, or twice
    in the batch). Returns old code -> new code for the redrawn ones (the caller puts the new code in
    its text). The caller commits; an IntegrityError (a code taken meanwhile by another engine)
    means: roll back and call again."""
    if not links:
        return {}
    now = now or clock.now()
    redrawn: dict[str, str] = {}
    taken = await taken_codes(session, (link.code for link in links))
    seen: set[str] = set()
    for link in links:
        if link.code in taken or link.code in seen:
            code = new_code()
            while code in taken or code in seen:
                code = new_code()
            redrawn[link.code] = code
            link.code = code
        seen.add(link.code)
    expires = now + timedelta(days=retention_days)
    await session.execute(ShortLink.__table__.insert(), [
        {"code": link.code, "url": link.url, "message_id": link.message_id, "position": link.position,
         "profile_id": link.profile_id, "campaign_id": link.campaign_id, "run_id": link.run_id,
         "variant": link.variant, "created_at": now, "expires_at": expires, "clicks": 0, "previews": 0}
        for link in links])
    return redrawn


# --- opening ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Opened:
    """What `open_link` found: status "redirect" (with the URL), "missing" or "expired"."""

    status: str
    url: str | None = None
    click: bool = False  # counted as a click (else a preview, or nothing)
    queued: int = 0  # messages live campaigns queued for the click event (the caller pokes the dispatcher)


async def open_link(session: AsyncSession, code: str, *, preview: bool, now: datetime | None = None) -> Opened:
    """Find a link by code and count the visit (see the module docstring). The caller commits."""
    if not is_code(code):
        return Opened("missing")
    now = now or clock.now()
    row = (await session.execute(select(ShortLink.id, ShortLink.url, ShortLink.expires_at, ShortLink.profile_id,
                                        ShortLink.campaign_id, ShortLink.run_id, ShortLink.variant)
                                 .where(ShortLink.code == code))).first()
    if row is None:
        return Opened("missing")
    if row.expires_at <= now:
        return Opened("expired")
    if preview:
        await session.execute(update(ShortLink).where(ShortLink.id == row.id)
                              .values(previews=ShortLink.previews + 1).execution_options(synchronize_session=False))
        return Opened("redirect", row.url)
    clicks = await session.scalar(
        update(ShortLink).where(ShortLink.id == row.id)
        .values(clicks=ShortLink.clicks + 1, last_clicked_at=now,
                first_clicked_at=func.coalesce(ShortLink.first_clicked_at, now))
        .returning(ShortLink.clicks).execution_options(synchronize_session=False))
    queued = 0
    if row.profile_id is not None:
        properties: dict[str, Any] = {"url": row.url}
        if row.campaign_id is not None:
            properties["campaign"] = f"C{row.campaign_id}"
        if row.run_id is not None:
            properties["run"] = row.run_id
        if row.variant:
            properties["variant"] = row.variant
        queued = await _record_click(session, row.profile_id, row.id, clicks or 0, properties, now)
    return Opened("redirect", row.url, click=True, queued=queued)


async def _record_click(session: AsyncSession, profile_id: int, link_id: int, number: int,
                        properties: dict[str, Any], now: datetime) -> int:
    """The `link_click` event (its property types in the catalog segments read), attributed to
    conversions and offered to the live triggers, as every recorded event is. Returns the messages
    the live triggers queued. Nothing when the profile is gone."""
    from smsconsole.models import Profile

    if await session.scalar(select(Profile.id).where(Profile.id == profile_id)) is None:
        return 0
    from smsconsole.services.replies import log_system_event

    return await log_system_event(session, profile_id, CLICK_EVENT, now, properties,
                                  dedupe_source=f"link:{link_id}:{number}", now=now)


# --- the report --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ArmClicks:
    run_id: int
    variant: str
    clicks: int  # every click
    unique_clicks: int  # messages clicked at least once (a recipient once per run)


async def clicks_by_arm(session: AsyncSession, campaign_id: int, *,
                        run_ids: Sequence[int] | None = None) -> list[ArmClicks]:
    """A campaign's clicks by run and variant (only clicked links are read: ix_short_links_campaign_clicks)."""
    query = (select(ShortLink.run_id, ShortLink.variant, func.sum(ShortLink.clicks),
                    func.count(func.distinct(ShortLink.message_id)))
             .where(ShortLink.campaign_id == campaign_id, ShortLink.clicks > 0)
             .group_by(ShortLink.run_id, ShortLink.variant))
    if run_ids is not None:
        query = query.where(ShortLink.run_id.in_(list(run_ids)))
    return [ArmClicks(int(run_id or 0), variant or "", int(total or 0), int(unique or 0))
            for run_id, variant, total, unique in await session.execute(query)]
