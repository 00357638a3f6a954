"""Reply options: a campaign that asks a question ("Reply C to confirm, R to reschedule"; "Reply
0-10") and takes the answers. An optional top-level part of the campaign document:

    replies:
      window: 48h                       # answers count this long after the message was sent
      options:
        - {reply: [C, CONFIRM], event: appointment_confirmed, answer: "Thanks, see you then."}
        - {reply: R, event: appointment_reschedule}
        - {numbers: 0-10, event: nps}   # a number in the range; the event gets it as `score`

A reply matches an option when, after the keywords' normalizing (no accents, upper case), the
whole reply — or its first word — is one of the option's words, or a whole number in its range.
It applies only to a message of the campaign sent to that number within the window (the run's
snapshot says which options the message offered), so an answer comes only from the campaign's
recipients; global keywords (STOP, HELP, custom keywords) are matched first and always win.

A matched reply (services/replies.record_inbound) is an inbound row with action "option" and its
option's label (the first word, or the number) in `reply_option`; it records the option's event
on the profile (with the campaign, run, variant, option and `score`) instead of `sms_reply`, and
queues the option's answer, if any, through the provider it came in by. The report counts each
recipient's last answer to a message (`answers_by_arm`): a changed mind counts once, as changed."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, NamedTuple

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from smsconsole.models import InboundMessage, Keyword, Message
from smsconsole.models.campaigns import Campaign, CampaignRun
from smsconsole.services.campaigns.arms import window_words
from smsconsole.services.campaigns.fields import Problems, Reader
from smsconsole.services.campaigns.trigger import parse_minutes
from smsconsole.services.keywords import EVENT_RE, ensure_defaults, normalize

MAX_OPTIONS = 10
DEFAULT_WINDOW_MINUTES = 48 * 60
MAX_WINDOW_MINUTES = 30 * 24 * 60
WORD_MAX = 32
WORDS_MAX = 10  # words per option
NUMBER_MAX = 1000
ANSWER_MAX = 480  # three GSM-7 parts
SCORE_PROPERTY = "score"
OPTION_ACTION = "option"  # inbound_messages.action of a reply that matched an option
CANDIDATES = 20  # the latest campaign messages to a number looked at for an option
FIELDS = frozenset({"window", "options"})
OPTION_FIELDS = frozenset({"reply", "numbers", "event", "answer"})
_RANGE = re.compile(r"^\s*(\d+)\s*(?:-|–|—|to|\.\.)\s*(\d+)\s*$", re.IGNORECASE)
_NUMBER = re.compile(r"^\d{1,4}$")


@dataclass(frozen=True)
class ReplyOption:
    event: str
    words: tuple[str, ...] = ()  # normalized; a word option
    low: int | None = None  # a number option: low..high inclusive
    high: int | None = None
    answer: str | None = None

    @property
    def numeric(self) -> bool:
        return self.low is not None

    @property
    def label(self) -> str:
        """How the option is named in reports and the Inbox: its first word, or its range."""
        return f"{self.low}-{self.high}" if self.numeric else self.words[0]

    def accepts(self) -> str:
        """'C or CONFIRM', 'a number 0-10'."""
        return f"a number {self.low}-{self.high}" if self.numeric else " or ".join(self.words)


@dataclass(frozen=True)
class ReplyOptions:
    options: tuple[ReplyOption, ...]
    window_minutes: int = DEFAULT_WINDOW_MINUTES

    @property
    def numeric(self) -> ReplyOption | None:
        return next((o for o in self.options if o.numeric), None)


@dataclass(frozen=True)
class OptionMatch:
    option: ReplyOption
    label: str  # what goes in inbound_messages.reply_option: the option's first word, or the number
    score: int | None  # the number, for a number option


def is_range(text: str) -> bool:
    """Whether typed text reads as a range of numbers ("0-10", "1 to 5"), whatever their size
    (too large a bound is then named by the check, under `numbers`)."""
    return bool(_RANGE.match(text))


def parse_numbers(value: Any) -> tuple[int, int] | None:
    """ "0-10", "1 to 5", [0, 10] -> (0, 10); None when it is not a range of whole numbers."""
    if isinstance(value, list | tuple) and len(value) == 2 and all(
            isinstance(v, int) and not isinstance(v, bool) for v in value):
        return int(value[0]), int(value[1])
    if isinstance(value, str):
        match = _RANGE.match(value.strip().lower())
        if match:
            return int(match.group(1)), int(match.group(2))
    return None


def parse_replies(data: Any, problems: Problems) -> ReplyOptions | None:
    """The document's `replies` part (None when absent or without options), problems named
    `replies.options.2.reply` and so on."""
    if data in (None, {}, ""):
        return None
    r = Reader(data, "replies", problems)
    if not isinstance(data, Mapping):
        return None
    r.only(FIELDS, "replies has window and options")
    window = DEFAULT_WINDOW_MINUTES
    raw_window = r.get("window")
    if raw_window is not None:
        minutes = parse_minutes(raw_window)
        if minutes is None or not 1 <= minutes <= MAX_WINDOW_MINUTES:
            r.problem("window", 'must be a duration from 1 minute to 30 days, e.g. "48h", "90m" or "7d"')
        else:
            window = minutes
    raw = data.get("options")
    if raw in (None, "", []):
        r.problem("options", "add at least one option (the words or the numbers a reply may be), or remove replies")
        return None
    if not isinstance(raw, list | tuple):
        r.problem("options", "must be a list of options, each {reply or numbers, event, answer}")
        return None
    if len(raw) > MAX_OPTIONS:
        r.problem("options", f"at most {MAX_OPTIONS} options")
        raw = raw[:MAX_OPTIONS]
    options: list[ReplyOption] = []
    seen_words: dict[str, int] = {}
    ranges: list[tuple[int, int, int]] = []
    for index, item in enumerate(raw, 1):
        o = Reader(item, f"replies.options.{index}", problems)
        if not isinstance(item, Mapping):
            continue
        o.only(OPTION_FIELDS, "an option has reply (its words) or numbers (a range), event and answer")
        event = o.text("event", max_len=128)
        if not event:
            o.problem("event", "name the event an answer records, e.g. appointment_confirmed")
        elif not EVENT_RE.match(event):
            o.problem("event", "use letters, digits, _ . : - (up to 128), e.g. appointment_confirmed")
            event = None
        answer = o.text("answer", max_len=ANSWER_MAX)
        raw_words, raw_numbers = item.get("reply"), item.get("numbers")
        if raw_words not in (None, "", []) and raw_numbers not in (None, ""):
            o.problem("reply", "an option has reply words or numbers, not both")
            continue
        words: list[str] = []
        low = high = None
        if raw_numbers not in (None, ""):
            bounds = parse_numbers(raw_numbers)
            if bounds is None or not 0 <= bounds[0] <= bounds[1] <= NUMBER_MAX:
                o.problem("numbers", f"must be a range of whole numbers such as 0-10 (from 0 to {NUMBER_MAX:,})")
                continue
            low, high = bounds
            overlap = next((i for lo, hi, i in ranges if lo <= high and low <= hi), None)
            if overlap is not None:
                o.problem("numbers", f"overlaps option {overlap}'s numbers")
                continue
            ranges.append((low, high, index))
        elif raw_words in (None, "", []):
            o.problem("reply", "give the word(s) a reply may be, e.g. C or CONFIRM (or numbers such as 0-10)")
            continue
        else:
            items = raw_words.split(",") if isinstance(raw_words, str) else raw_words
            if not isinstance(items, list | tuple) or not all(isinstance(w, str | int) and not isinstance(w, bool)
                                                              for w in items):
                o.problem("reply", "must be a word or a list of words, e.g. [C, CONFIRM]")
                continue
            for word in items:
                norm = normalize(str(word))
                if not norm:
                    o.problem("reply", f"{str(word)[:20]!r} has no letter or digit")
                elif len(norm) > WORD_MAX:
                    o.problem("reply", f"{norm[:20]!r}… is longer than {WORD_MAX} characters")
                elif norm in seen_words:
                    where = "this option" if seen_words[norm] == index else f"option {seen_words[norm]}"
                    o.problem("reply", f"{norm!r} is already a reply of {where}")
                else:
                    seen_words[norm] = index
                    words.append(norm)
            if len(words) > WORDS_MAX:
                o.problem("reply", f"at most {WORDS_MAX} words per option")
            if not words:
                continue
        if event:
            options.append(ReplyOption(event, tuple(words), low, high, answer or None))
    for word, index in seen_words.items():  # a word that is a number in a range could mean either
        if _NUMBER.match(word) and any(lo <= int(word) <= hi for lo, hi, _ in ranges):
            problems.append((f"replies.options.{index}.reply", f"{word} is also in a numbers range; choose one"))
    return ReplyOptions(tuple(options), window) if options else None


def replies_dict(value: ReplyOptions | None) -> dict[str, Any] | None:
    if value is None:
        return None
    options = []
    for option in value.options:
        item: dict[str, Any] = ({"numbers": f"{option.low}-{option.high}"} if option.numeric
                                else {"reply": list(option.words)})
        item["event"] = option.event
        if option.answer:
            item["answer"] = option.answer
        options.append(item)
    return {"window": window_words(value.window_minutes), "options": options}


def sentence(value: ReplyOptions) -> str:
    """'Within 48h: C or CONFIRM → appointment_confirmed (answers); a number 0-10 → nps (score)'."""
    parts = []
    for option in value.options:
        tail = " (score)" if option.numeric else ""
        parts.append(f"{option.accepts()} → {option.event}{tail}" + (" + answer" if option.answer else ""))
    return f"Within {window_words(value.window_minutes)}: " + "; ".join(parts)


def option_lines(value: ReplyOptions | None) -> list[str]:
    """The CLI's lines for the options (`campaigns show`): the window, then one line per option."""
    if value is None:
        return []
    lines = [f"answers within {window_words(value.window_minutes)} of the message"]
    for option in value.options:
        line = f"{option.accepts()} → {option.event}" + (" (with the score)" if option.numeric else "")
        if option.answer:
            answer = option.answer if len(option.answer) <= 40 else option.answer[:39] + "…"
            line += f", answers {answer!r}"
        lines.append(line)
    return lines


def match(value: ReplyOptions, text: str) -> OptionMatch | None:
    """The option this reply picks (the whole reply, else its first word), or None."""
    norm = normalize(text or "")
    if not norm:
        return None
    for candidate in dict.fromkeys((norm, norm.split(" ")[0])):
        for option in value.options:
            if option.numeric:
                if _NUMBER.match(candidate) and option.low <= int(candidate) <= option.high:  # type: ignore[operator]
                    return OptionMatch(option, str(int(candidate)), int(candidate))
            elif candidate in option.words:
                return OptionMatch(option, option.words[0], None)
    return None


# --- finding the message a reply answers ------------------------------------------------------


@dataclass(frozen=True)
class Answer:
    """A reply that answers a campaign message's option."""

    message: Message
    match: OptionMatch
    options: ReplyOptions


async def find_answer(session: AsyncSession, sender: str, text: str, at: datetime) -> Answer | None:
    """The newest campaign message sent to `sender` whose options (the run's snapshot; the
    campaign's document for a test send) this reply picks, sent within their window before `at`."""
    if not normalize(text or ""):
        return None
    messages = list(await session.scalars(
        select(Message).where(Message.to_number == sender, Message.campaign_id.is_not(None),
                              Message.sent_at.is_not(None), Message.sent_at <= at + timedelta(minutes=5),
                              Message.sent_at >= at - timedelta(minutes=MAX_WINDOW_MINUTES))
        .order_by(Message.sent_at.desc(), Message.id.desc()).limit(CANDIDATES)))
    cache: dict[tuple[int, int | None], ReplyOptions | None] = {}
    for message in messages:
        assert message.campaign_id is not None and message.sent_at is not None
        key = (message.campaign_id, message.run_id)
        if key not in cache:
            cache[key] = await _options_of(session, message.campaign_id, message.run_id)
        options = cache[key]
        if options is None or at - message.sent_at > timedelta(minutes=options.window_minutes):
            continue
        found = match(options, text)
        if found is not None:
            return Answer(message, found, options)
    return None


async def _options_of(session: AsyncSession, campaign_id: int, run_id: int | None) -> ReplyOptions | None:
    document = None
    if run_id is not None:
        document = await session.scalar(select(CampaignRun.document).where(CampaignRun.id == run_id))
    if document is None:
        document = await session.scalar(select(Campaign.document).where(Campaign.id == campaign_id))
    raw = (document or {}).get("replies") if isinstance(document, Mapping) else None
    return parse_replies(raw, []) if raw else None


# --- checks at scheduling -----------------------------------------------------------------------


async def reply_option_problems(session: AsyncSession, value: ReplyOptions | None) -> list[tuple[str, str]]:
    """An option word that is an enabled keyword never reaches the option (the keyword wins):
    named, so the operator picks another word."""
    if value is None:
        return []
    words = {word: index for index, option in enumerate(value.options, 1) for word in option.words}
    if not words:
        return []
    await ensure_defaults(session)  # STOP, HELP, … are there before the first reply
    taken = (await session.execute(select(Keyword.word, Keyword.action).where(
        Keyword.word.in_(sorted(words)), Keyword.enabled.is_(True)).order_by(Keyword.word))).all()
    return [(f"replies.options.{words[word]}.reply",
             f"{word} is a keyword ({action.replace('_', '-')}) and keywords always win; choose another word")
            for word, action in taken]


# --- the report's figures -----------------------------------------------------------------------


class ArmAnswers(NamedTuple):
    run_id: int | None
    variant: str | None
    option: str  # the label recorded: a word option's first word, or the number
    count: int


async def answers_by_arm(session: AsyncSession, campaign_id: int,
                         run_ids: Iterable[int] | None = None) -> list[ArmAnswers]:
    """Answers to a campaign's options by run, variant and option: each message's last answer
    (a recipient who changes their mind counts once, as changed), through ix_inbound_campaign."""
    wanted = sorted(set(run_ids)) if run_ids is not None else None
    if wanted == []:
        return []
    where = [InboundMessage.campaign_id == campaign_id, InboundMessage.reply_option.is_not(None)]
    if wanted is not None:
        where.append(InboundMessage.run_id.in_(wanted))
    last = select(func.max(InboundMessage.id)).where(*where).group_by(InboundMessage.answers_message_id)
    query = (select(InboundMessage.run_id, InboundMessage.variant, InboundMessage.reply_option, func.count())
             .where(InboundMessage.id.in_(last))
             .group_by(InboundMessage.run_id, InboundMessage.variant, InboundMessage.reply_option))
    rows = [ArmAnswers(run_id, variant, option, int(n)) for run_id, variant, option, n in
            (await session.execute(query)).all()]
    return sorted(rows, key=lambda a: (a.run_id or 0, a.variant or "", a.option))


@dataclass(frozen=True)
class OptionFigures:
    """Answers per option of a campaign (over the runs reported), with an NPS summary when its
    number option is 0-10 (promoters 9-10, passives 7-8, detractors 0-6; NPS = %promoters -
    %detractors)."""

    answers: tuple[tuple[str, int], ...]  # (word option label, answers) in the options' order
    scores: tuple[tuple[int, int], ...]  # (score, answers) across the number option's range
    total: int
    nps: float | None = None
    promoters: int = 0
    passives: int = 0
    detractors: int = 0

    @property
    def rated(self) -> int:
        """Answers to the number option."""
        return sum(n for _, n in self.scores)

    @property
    def mean(self) -> float | None:
        """The number option's mean score, None without answers."""
        return sum(score * n for score, n in self.scores) / self.rated if self.rated else None


def option_figures(value: ReplyOptions | None, counts: Mapping[str, int]) -> OptionFigures | None:
    """The figures from the answers counted per recorded label (`counts`)."""
    if value is None:
        return None
    answers = tuple((o.label, int(counts.get(o.label, 0))) for o in value.options if not o.numeric)
    numeric = value.numeric
    scores: tuple[tuple[int, int], ...] = ()
    nps = None
    promoters = passives = detractors = 0
    if numeric is not None and numeric.low is not None and numeric.high is not None:
        scores = tuple((n, int(counts.get(str(n), 0))) for n in range(numeric.low, numeric.high + 1))
        if (numeric.low, numeric.high) == (0, 10):
            promoters = sum(c for n, c in scores if n >= 9)
            passives = sum(c for n, c in scores if 7 <= n <= 8)
            detractors = sum(c for n, c in scores if n <= 6)
            rated = promoters + passives + detractors
            nps = round(100.0 * (promoters - detractors) / rated, 1) if rated else None
    total = sum(c for _, c in answers) + sum(c for _, c in scores)
    return OptionFigures(answers, scores, total, nps, promoters, passives, detractors)


def nps_score(nps: float) -> str:
    """+40, -12, 0: the NPS as a whole signed number (no sign on zero)."""
    return "0" if round(nps) == 0 else f"{nps:+.0f}"


def nps_words(figures: OptionFigures) -> str | None:
    """'NPS +40 (promoters 3 · passives 1 · detractors 1)', or None without a 0-10 score."""
    if figures.nps is None:
        return None
    score = nps_score(figures.nps)
    return (f"NPS {score} (promoters {figures.promoters:,} · passives {figures.passives:,} · "
            f"detractors {figures.detractors:,})")


def answers_words(figures: OptionFigures) -> str:
    """'C 2 (67%), R 1 (33%)' and/or 'scores 0:1 … 10:2' — each option's answers in words."""
    def share(n: int) -> str:
        return f"{n:,} ({100 * n / figures.total:.0f}%)" if figures.total else f"{n:,}"

    parts = [f"{label} {share(n)}" for label, n in figures.answers]
    if figures.scores:
        parts.append("scores " + " ".join(f"{score}:{n:,}" for score, n in figures.scores))
    return ", ".join(parts)


def answers_dict(figures: OptionFigures | None) -> dict[str, Any] | None:
    """The figures as JSON holds them: options and scores as {label: answers}."""
    if figures is None:
        return None
    return {"total": figures.total, "options": dict(figures.answers),
            "scores": {str(score): n for score, n in figures.scores}, "nps": figures.nps,
            "promoters": figures.promoters, "passives": figures.passives, "detractors": figures.detractors}
