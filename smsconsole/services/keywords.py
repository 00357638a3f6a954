"""Reply keywords (STOP, AYUDA, ARRÊT …): the defaults, matching, and the operator's changes.

A keyword matches a reply only when it is the *whole* reply, compared after normalization: accents
dropped (ARRÊT = ARRET), upper case, and every run of punctuation, symbols or spaces made one space,
then trimmed — so "Stop.", " STOP!! ", "opt-out" and "Opt Out" match, while "stop sending me deals"
is not a keyword but a reply (it is logged as an `sms_reply` event for segments to use)."""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import delete, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from smsconsole import clock
from smsconsole.models import Keyword, Setting
from smsconsole.services import audit
from smsconsole.services.errors import Conflict, NotFound, ValidationError

ACTIONS = ("opt_out", "opt_in", "help", "custom")
ACTION_LABELS = {"opt_out": "opt-out", "opt_in": "opt-in", "help": "help", "custom": "custom event"}
WORD_MAX = 64
RESPONSE_MAX = 480  # three GSM-7 segments: an auto-response says what happened, nothing more
LANGUAGE_RE = re.compile(r"^[a-z]{2,3}(-[A-Za-z0-9]{2,8})?$")
EVENT_RE = re.compile(r"^[A-Za-z0-9_.:\-]{1,128}$")
SEEDED_MARKER = "keywords_seeded"  # a settings row: the defaults are seeded once, deletions stick

_RESPONSES = {
    ("opt_out", "en"): "You are unsubscribed and will receive no more messages from us. Reply START to resubscribe.",
    ("opt_out", "es"): "Te has dado de baja y no recibirás más mensajes nuestros. Responde START o SI para volver.",
    ("opt_out", "pt"): "Sua inscrição foi cancelada e você não receberá mais mensagens. Responda START ou SIM para voltar.",
    ("opt_out", "fr"): "Vous êtes désinscrit et ne recevrez plus nos messages. Répondez START ou OUI pour vous réabonner.",
    ("opt_in", "en"): "You are subscribed again. Reply STOP to unsubscribe at any time.",
    ("opt_in", "es"): "Te has suscrito de nuevo. Responde BAJA en cualquier momento para darte de baja.",
    ("opt_in", "pt"): "Sua inscrição foi reativada. Responda SAIR a qualquer momento para cancelar.",
    ("opt_in", "fr"): "Vous êtes de nouveau abonné. Répondez ARRET à tout moment pour vous désinscrire.",
    ("help", "en"): "Reply STOP to unsubscribe or START to resubscribe. Message and data rates may apply.",
    ("help", "es"): "Responde BAJA para darte de baja o SI para volver a suscribirte.",
    ("help", "pt"): "Responda SAIR para cancelar ou SIM para voltar a receber mensagens.",
    ("help", "fr"): "Répondez ARRET pour vous désinscrire ou OUI pour vous réabonner.",
}

# (word, action, language). Each normalized word once: STOP serves French too; ARRÊT is ARRET.
DEFAULT_KEYWORDS: tuple[tuple[str, str, str], ...] = (
    *((w, "opt_out", "en") for w in ("STOP", "STOPALL", "UNSUBSCRIBE", "CANCEL", "END", "QUIT", "REVOKE",
                                     "OPT OUT", "OPTOUT")),
    *((w, "opt_out", "es") for w in ("BAJA", "ALTO", "PARAR", "DETENER", "CANCELAR SUSCRIPCION")),
    *((w, "opt_out", "pt") for w in ("SAIR", "PARE", "CANCELAR", "DESCADASTRAR")),
    *((w, "opt_out", "fr") for w in ("ARRET", "DESABONNER", "DESINSCRIRE")),
    *((w, "opt_in", "en") for w in ("START", "UNSTOP", "YES", "SUBSCRIBE")),
    ("SI", "opt_in", "es"), ("SIM", "opt_in", "pt"), ("OUI", "opt_in", "fr"),
    *((w, "help", "en") for w in ("HELP", "INFO")),
    ("AYUDA", "help", "es"), ("AJUDA", "help", "pt"), ("AIDE", "help", "fr"),
)

_SEPARATORS = re.compile(r"[^0-9A-Z]+")


def normalize(text: str) -> str:
    """The form keywords are stored and compared in: no accents, upper case, single spaces."""
    decomposed = unicodedata.normalize("NFKD", text)
    bare = "".join(ch for ch in decomposed if not unicodedata.combining(ch))
    return _SEPARATORS.sub(" ", bare.upper()).strip()


@dataclass(frozen=True)
class KeywordView:
    id: int
    word: str
    action: str
    language: str | None
    response: str | None
    event_name: str | None
    enabled: bool
    builtin: bool
    updated_at: datetime


def _view(row: Keyword) -> KeywordView:
    return KeywordView(row.id, row.word, row.action, row.language, row.response, row.event_name, row.enabled,
                       row.builtin, row.updated_at)


def _insert_ignore(session: AsyncSession, model: type, index_elements: list[str]):  # type: ignore[no-untyped-def]
    module = postgresql if session.bind.dialect.name == "postgresql" else sqlite
    return module.insert(model).on_conflict_do_nothing(index_elements=index_elements)


async def ensure_defaults(session: AsyncSession) -> None:
    """Seed the default keywords the first time keywords are used (once per database, so a default
    the operator removed stays removed). Safe when two processes race."""
    if await session.get(Setting, SEEDED_MARKER) is not None:
        return
    now = clock.now()
    await session.execute(_insert_ignore(session, Keyword, ["word"]), [
        {"word": word, "action": action, "language": language, "response": _RESPONSES.get((action, language)),
         "event_name": None, "enabled": True, "builtin": True, "created_at": now, "updated_at": now}
        for word, action, language in DEFAULT_KEYWORDS
    ])
    await session.execute(_insert_ignore(session, Setting, ["key"]),
                          [{"key": SEEDED_MARKER, "value": "1", "updated_at": now}])


async def list_keywords(session: AsyncSession) -> list[KeywordView]:
    await ensure_defaults(session)
    rows = await session.scalars(select(Keyword))
    order = {action: index for index, action in enumerate(ACTIONS)}
    return sorted((_view(r) for r in rows), key=lambda v: (order.get(v.action, 9), v.language or "~", v.word))


async def match_keyword(session: AsyncSession, text: str) -> KeywordView | None:
    """The enabled keyword that is this whole reply, or None (a plain reply)."""
    word = normalize(text)
    if not word or len(word) > WORD_MAX:
        return None
    await ensure_defaults(session)
    row = await session.scalar(select(Keyword).where(Keyword.word == word, Keyword.enabled.is_(True)))
    return _view(row) if row is not None else None


@dataclass(frozen=True)
class KeywordInput:
    word: str
    action: str
    language: str | None
    response: str | None
    event_name: str | None


def _validate(word: str, action: str, language: str | None, response: str | None,
              event_name: str | None) -> KeywordInput:
    problems: list[tuple[str, str]] = []
    normalized = normalize(word or "")
    if not normalized:
        problems.append(("word", "is required (letters or digits, e.g. STOP or PROMO)"))
    elif len(normalized) > WORD_MAX:
        problems.append(("word", f"is {len(normalized)} characters; at most {WORD_MAX}"))
    action = (action or "").strip().lower().replace("-", "_")
    if action not in ACTIONS:
        problems.append(("action", f"must be one of {', '.join(ACTIONS)}"))
    language = (language or "").strip() or None
    if language is not None:
        language = language.lower()
        if not LANGUAGE_RE.match(language):
            problems.append(("language", "must be a language code such as en, es, pt-BR or fr"))
    response = (response or "").strip() or None
    if response is not None and len(response) > RESPONSE_MAX:
        problems.append(("response", f"is {len(response)} characters; at most {RESPONSE_MAX}"))
    event_name = (event_name or "").strip() or None
    if action == "custom" and event_name is None:
        problems.append(("event_name", "is required for a custom keyword (the event its replies are logged as)"))
    elif event_name is not None and not EVENT_RE.match(event_name):
        problems.append(("event_name", "use letters, digits and _ . : - (at most 128), e.g. survey_answer"))
    if action in ("opt_out", "opt_in", "help") and event_name is not None:
        problems.append(("event_name", "only a custom keyword logs its own event"))
    if problems:
        raise ValidationError(problems)
    return KeywordInput(normalized, action, language, response, event_name)


async def _by_word(session: AsyncSession, word: str) -> Keyword:
    row = await session.scalar(select(Keyword).where(Keyword.word == normalize(word)))
    if row is None:
        raise NotFound(f"no keyword {normalize(word) or word!r}")
    return row


async def get_keyword(session: AsyncSession, word: str) -> KeywordView:
    await ensure_defaults(session)
    return _view(await _by_word(session, word))


async def create_keyword(session: AsyncSession, *, word: str, action: str, language: str | None = None,
                         response: str | None = None, event_name: str | None = None, actor: str) -> KeywordView:
    await ensure_defaults(session)
    existing = await session.scalar(select(Keyword).where(Keyword.word == normalize(word or ""))) \
        if normalize(word or "") else None
    taken = [("word", f"{existing.word!r} already exists ({ACTION_LABELS[existing.action]})")] if existing else []
    try:
        data = _validate(word, action, language, response, event_name)
    except ValidationError as exc:
        raise ValidationError(taken + exc.problems) from None
    if taken:
        raise ValidationError(taken)
    now = clock.now()
    row = Keyword(word=data.word, action=data.action, language=data.language, response=data.response,
                  event_name=data.event_name, enabled=True, builtin=False, created_at=now, updated_at=now)
    session.add(row)
    await session.flush()
    await audit.record(session, actor, "keyword.create", data.word, keyword_action=data.action,
                       language=data.language or "-")
    return _view(row)


async def update_keyword(session: AsyncSession, word: str, *, new_word: str | None = None,
                         action: str | None = None, language: str | None = None, response: str | None = None,
                         event_name: str | None = None, enabled: bool | None = None, actor: str) -> KeywordView:
    """Change a keyword; None leaves a field as it is ('' clears language, response, event name).
    A default keyword keeps its word and action (its response and language can change)."""
    await ensure_defaults(session)
    row = await _by_word(session, word)
    data = _validate(
        row.word if new_word is None else new_word, row.action if action is None else action,
        row.language if language is None else language, row.response if response is None else response,
        row.event_name if event_name is None else event_name,
    )
    problems = []
    if row.builtin and data.word != row.word:
        problems.append(("word", "a default keyword keeps its word (add a new keyword instead)"))
    if row.builtin and data.action != row.action:
        problems.append(("action", "a default keyword keeps its action (disable it and add a new one)"))
    if data.word != row.word and await session.scalar(select(Keyword.id).where(Keyword.word == data.word)):
        problems.append(("word", f"{data.word!r} already exists"))
    if problems:
        raise ValidationError(problems)
    changed = {name: value for name, value in (
        ("word", data.word), ("action", data.action), ("language", data.language), ("response", data.response),
        ("event_name", data.event_name), ("enabled", row.enabled if enabled is None else enabled),
    ) if getattr(row, name) != value}
    for name, value in changed.items():
        setattr(row, name, value)
    if changed:
        row.updated_at = clock.now()
        await audit.record(session, actor, "keyword.update", row.word, changed=sorted(changed))
    return _view(row)


async def delete_keyword(session: AsyncSession, word: str, *, actor: str) -> None:
    await ensure_defaults(session)
    row = await _by_word(session, word)
    if row.action == "opt_out" and row.word == "STOP":
        raise Conflict("STOP cannot be removed: carriers require it (disable others, or edit its response)")
    await session.execute(delete(Keyword).where(Keyword.id == row.id))
    await audit.record(session, actor, "keyword.delete", row.word, keyword_action=row.action, builtin=row.builtin)
