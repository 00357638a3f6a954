"""India DLT: does a message body match a registered content template?

What we decided, following how operators' scrubbers behave:
- both texts are NFC-normalised (an é typed as e + combining accent is the same é);
- leading/trailing whitespace is ignored and any run of whitespace (spaces, tabs, newlines) equals
  any other run; whether there is whitespace still matters ("Rs.500" is not "Rs. 500");
- letters are case-sensitive ("Dear" is not "dear"): the scrubbers compare the fixed text exactly;
- `{#var#}` is the placeholder (matched case-insensitively, spaces inside tolerated: `{# VAR #}`);
  each takes 0..30 characters of any kind (Unicode code points after NFC); adjacent placeholders
  share their budget (`{#var#}{#var#}` takes up to 60), the operators' trick for long values.

Sources: MAX_VARIABLE = 30 — "the variable's actual value ... a maximum of 30 characters for both
English and Unicode" (localmail DLT FAQ, https://docs.localmail.io/regulations/everything-to-know-
about-dlt-india/frequenty-asked-questions; smsdeals' {#var#} guide says the same). Some aggregators
allow more (MSG91 documents 40), so 30 is the safe bound. Case-sensitivity: Exotel's DLT guide
(https://developer.exotel.com/docs/sms-support/dlt-template-registration).
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass
from functools import lru_cache

VARIABLE = "{#var#}"
MAX_VARIABLE = 30

_PLACEHOLDER = re.compile(r"\{#\s*var\s*#\}", re.IGNORECASE)
_WHITESPACE = re.compile(r"\s+")
_LIQUID_OUTPUT = re.compile(r"(\s*)\{\{(-?)(.*?)(-?)\}\}(\s*)", re.DOTALL)


@dataclass(frozen=True)
class DltMatch:
    ok: bool
    values: tuple[str, ...]  # what each {#var#} took when ok
    difference: str  # "" when ok; else which words differ, or which variable is too long


@dataclass(frozen=True)
class _Token:
    kind: str  # "text" | "space" | "vars"
    text: str = ""  # the literal for "text"
    count: int = 0  # how many adjacent placeholders for "vars"
    first: int = 0  # 1-based number of the first placeholder in the run
    word: str = ""  # the template word this token belongs to, for the difference text


def match_template(template: str, body: str) -> DltMatch:
    """Whether `body` is `template` with each {#var#} filled (see the module docstring)."""
    return _compare(template, body)[0]


def best_match(templates: Iterable[tuple[str, str]], body: str) -> tuple[str | None, DltMatch]:
    """(template_id, match) for the first template that matches; else the closest, with its difference."""
    best: tuple[str | None, DltMatch] = (None, DltMatch(False, (), "no registered template to match against"))
    best_score: tuple[int, int] | None = None
    for template_id, content in templates:
        match, score = _compare(content, body)
        if match.ok:
            return template_id, match
        if best_score is None or score > best_score:
            best, best_score = (template_id, match), score
    return best


def liquid_skeleton(body_template: str) -> str:
    """A Liquid body with each {{ … }} output replaced by {#var#}, to check before rendering.

    Whitespace control (`{{-` / `-}}`) strips the neighbouring whitespace as Liquid would. Tags
    ({% … %}) are left in place: a body with branches can only be checked once rendered.
    """

    def replace(match: re.Match[str]) -> str:
        before, strip_left, _, strip_right, after = match.groups()
        return ("" if strip_left else before) + VARIABLE + ("" if strip_right else after)

    return _LIQUID_OUTPUT.sub(replace, body_template)


# --- matching ----------------------------------------------------------------------------------


def _normalise(text: str) -> str:
    return _WHITESPACE.sub(" ", unicodedata.normalize("NFC", text)).strip()


@lru_cache(maxsize=1024)
def _tokens(template: str) -> tuple[_Token, ...]:
    tokens: list[_Token] = []
    number = 0
    for word in _normalise(_PLACEHOLDER.sub(VARIABLE, template)).split(" "):
        if tokens:
            tokens.append(_Token("space", word=word))
        position = 0
        for placeholder in _PLACEHOLDER.finditer(word):
            if placeholder.start() > position:
                tokens.append(_Token("text", text=word[position : placeholder.start()], word=word))
            number += 1
            last = tokens[-1] if tokens else None
            if last is not None and last.kind == "vars" and position == placeholder.start() and last.word == word:
                tokens[-1] = _Token("vars", count=last.count + 1, first=last.first, word=word)
            else:
                tokens.append(_Token("vars", count=1, first=number, word=word))
            position = placeholder.end()
        if position < len(word) or not word:
            tokens.append(_Token("text", text=word[position:], word=word))
    return tuple(tokens)


def _reach(tokens: tuple[_Token, ...], text: str, *, bounded: bool) -> list[set[int]]:
    """Positions of `text` reachable after each token (reach[i] is before token i).

    A dynamic programme rather than a regular expression: backtracking over several 0..30-character
    variables is exponential on a body that does not match, this is linear in tokens × length.
    A space next to a variable may be shared with it, so an empty variable does not need two spaces.
    """
    size = len(text)
    reach: list[set[int]] = [{0}]
    for index, token in enumerate(tokens):
        current, following = reach[-1], set()
        if token.kind == "text":
            following = {p + len(token.text) for p in current if text.startswith(token.text, p)}
        elif token.kind == "space":
            after_vars = index > 0 and tokens[index - 1].kind == "vars"
            before_vars = index + 1 < len(tokens) and tokens[index + 1].kind == "vars"
            for p in current:
                if p < size and text[p] == " ":
                    following.add(p + 1)
                if (after_vars and (p == 0 or text[p - 1] == " ")) or (before_vars and p == size):
                    following.add(p)
        elif current:
            limit = MAX_VARIABLE * token.count if bounded else size
            covered = -1
            for p in sorted(current):
                following.update(range(max(p, covered + 1), min(p + limit, size) + 1))
                covered = max(covered, min(p + limit, size))
        reach.append(following)
    return reach


def _values(tokens: tuple[_Token, ...], text: str, reach: list[set[int]], *, bounded: bool) -> list[tuple[_Token, str]]:
    """Walk back from the end: each variable starts as early as it can (earlier variables shortest)."""
    position = len(text)
    values: list[tuple[_Token, str]] = []
    for index in range(len(tokens) - 1, -1, -1):
        token, before = tokens[index], reach[index]
        if token.kind == "text":
            position -= len(token.text)
        elif token.kind == "space":
            if position - 1 in before and text[position - 1] == " ":
                position -= 1
        else:
            limit = MAX_VARIABLE * token.count if bounded else len(text)
            start = min(p for p in before if position - limit <= p <= position)
            values.append((token, text[start:position]))
            position = start
    values.reverse()
    return values


def _split(run: _Token, value: str) -> list[str]:
    """A run of adjacent placeholders' shared value, split 30 characters each from the left."""
    pieces = [value[i * MAX_VARIABLE : (i + 1) * MAX_VARIABLE] for i in range(run.count - 1)]
    pieces.append(value[(run.count - 1) * MAX_VARIABLE :])
    return pieces


def _compare(template: str, body: str) -> tuple[DltMatch, tuple[int, int]]:
    """The match and a closeness score (higher is closer) for best_match."""
    tokens = _tokens(template)
    text = _normalise(body)
    strict = _reach(tokens, text, bounded=True)
    if len(text) in strict[-1]:
        values = tuple(piece for run, value in _values(tokens, text, strict, bounded=True) for piece in _split(run, value))
        return DltMatch(True, values, ""), (len(text) + 1, 0)
    loose = _reach(tokens, text, bounded=False)
    if len(text) in loose[-1]:
        for run, value in _values(tokens, text, loose, bounded=False):
            limit = MAX_VARIABLE * run.count
            if len(value) > limit:
                which = f"variable {run.first}" if run.count == 1 else f"variables {run.first}–{run.first + run.count - 1}"
                verb = "takes" if run.count == 1 else "take"
                difference = f"{which} {verb} {len(value)} characters, at most {limit}"
                return DltMatch(False, (), difference), (len(text), 0)
    return _difference(tokens, text, loose)


def _difference(tokens: tuple[_Token, ...], text: str, reach: list[set[int]]) -> tuple[DltMatch, tuple[int, int]]:
    """Name the first template word the body does not follow (the longest template prefix that matches)."""
    matched_end, failing = 0, 0
    for count in range(len(tokens), -1, -1):
        at_word_end = count > 0 and (count == len(tokens) or tokens[count].kind == "space")
        ends = [p for p in reach[count] if not at_word_end or p == len(text) or text[p] == " "]
        if ends:
            matched_end, failing = min(ends), count
            break
    words = text.split(" ") if text else []
    word_number = text[:matched_end].count(" ") + 1
    template_length = sum(len(token.text) for token in tokens) + sum(token.kind == "space" for token in tokens)
    score = (matched_end, -abs(len(text) - template_length))
    if failing >= len(tokens):
        extra = text[matched_end:].strip()
        difference = f'message has extra words at the end: "{_clip(extra)}" (word {word_number + 1})'
        return DltMatch(False, (), difference), score
    token = tokens[failing]
    expected = f"{tokens[failing - 1].word} {token.word}" if token.kind == "space" and failing else token.word
    if matched_end >= len(text):
        rest = " ".join(t.word for t in tokens[failing + 1 :] if t.kind == "space")
        upcoming = f"{expected} {rest}".strip() if token.kind != "space" else f"{token.word} {rest}".strip()
        number = word_number + (1 if token.kind == "space" else 0)
        difference = f'message ends early: template continues with "{_clip(upcoming)}" (word {number})'
        return DltMatch(False, (), difference), score
    found = _clip(words[word_number - 1])
    difference = f'template has "{expected}", message has "{found}" (word {word_number})'
    if expected.casefold() == found.casefold():
        difference += ": only the letter case differs, and DLT matching is case-sensitive"
    return DltMatch(False, (), difference), score


def _clip(text: str, limit: int = 40) -> str:
    if len(text) <= limit:
        return text
    cut = text[:limit]
    return (cut.rsplit(" ", 1)[0] if " " in cut else cut) + " …"
