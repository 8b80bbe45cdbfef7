"""Rewrite a follow-up question into a standalone query for retrieval, using the conversation.

"and how much did it cost?" retrieves nothing useful on its own; "How much did DeepSeek-V3
cost?" does. Rules come first: "it"/"its" become the subject of the previous query, and
"what about X?" asks the previous question of X. When no rule resolves the reference
("who founded the company?"), ``auto`` mode asks the generator (a short few-shot prompt)
and keeps its rewrite only when it passes sanity checks; otherwise the previous subject is
appended as context. Small models such as SmolLM2-135M often echo the follow-up or answer
it instead, so the rules do most of the work with the default model.
:class:`rag.Conversation` uses it for every follow-up.

Example:
    >>> rewriter = QueryRewriter(mode="heuristic")
    >>> history = [Turn("What did the DeepSeek-V3 report say training cost?", "It said $5.6 million [1].")]
    >>> rewriter.rewrite("and how much did it cost to train?", history).query
    'How much did DeepSeek-V3 cost to train?'
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from .generation import Generator
from .text import MARKER, content_words

REWRITE_MODES = ("auto", "heuristic", "off")

# Words that make a question lean on what was said before.
_ANAPHORA = frozenset("it its it's itself they them their theirs these those he him his she her this".split())
_CONTINUATIONS = re.compile(r"^\s*(?:and|but|so|also|then|ok(?:ay)?|well|plus)\b[\s,]*", re.IGNORECASE)
_WHAT_ABOUT = re.compile(r"^\s*(?:and\s+)?(?:what|how)\s+about\s+(?P<x>.+?)\s*\??\s*$", re.IGNORECASE)
_NOT_NAMES = frozenset(
    "a an the and or but so if of to in on at by for with from as is are was were be been did do does done has have had will would can "
    "could should may might what when where which who whom whose why how i you we they it he she this that these those there here "
    "also then ok okay well yes no not please tell give explain describe list compare according".split()
)
_MONTHS = frozenset("january february march april may june july august september october november december".split())
_WH = frozenset("what when where which who whom whose why how".split())
_QUESTION_STARTS = _WH | frozenset(
    "did do does is are was were can could should will would has have had may might".split()
)
_TOKEN = re.compile(r"[A-Za-z0-9$][\w$.\-\u2019']*[\w%]|[A-Za-z0-9]")


@dataclass(frozen=True)
class Turn:
    """One finished exchange of a conversation.

    Attributes:
        question: what the user typed.
        answer: the answer shown (citation markers may be included).
        query: the standalone query that was retrieved with ('' means the question itself).
    """

    question: str
    answer: str = ""
    query: str = ""

    @property
    def standalone(self) -> str:
        """The query if one was recorded, else the question."""
        return self.query or self.question


@dataclass(frozen=True)
class Rewrite:
    """A rewritten query and how it was made: ``"unchanged"``, ``"model"`` or ``"heuristic"``."""

    query: str
    method: str

    @property
    def changed(self) -> bool:
        return self.method != "unchanged"


def names_in(text: str) -> list[str]:
    """Name-like phrases of ``text`` (capitalised words, model ids such as R1 or H800), in order.

    Consecutive name words are joined ("Liang Wenfeng"); punctuation between them splits.
    A trailing possessive "'s" is dropped.
    """
    phrases: list[str] = []
    current: list[str] = []
    last_end = -1
    for m in _TOKEN.finditer(text):
        possessive = bool(re.search(r"['\u2019]s$", m.group(0)))
        word = re.sub(r"['\u2019]s$", "", m.group(0)).rstrip(".")
        is_name = (
            bool(word)
            and word.lower() not in _NOT_NAMES
            and (word[0].isupper() or (any(c.isalpha() for c in word) and any(c.isdigit() for c in word)))
        )
        adjacent = last_end >= 0 and text[last_end : m.start()].strip() == ""
        if is_name and current and adjacent:
            current.append(word)
        else:
            if current:
                phrases.append(" ".join(current))
            current = [word] if is_name else []
        if possessive and current:
            phrases.append(" ".join(current))  # "DeepSeek's H800" is two things
            current = []
        last_end = m.end()
    if current:
        phrases.append(" ".join(current))
    seen: set[str] = set()
    return [p for p in phrases if not (p.lower() in seen or seen.add(p.lower()))]


def _subject_names(text: str) -> list[str]:
    """Names that can stand for "it": no months or bare dates."""
    return [n for n in names_in(text) if not any(w.lower() in _MONTHS for w in n.split()) and not n.isdigit()]


def is_follow_up(question: str) -> bool:
    """True when ``question`` seems to lean on the conversation (pronouns, "and ...", "what about ...").

    A question that names its own subject and uses no pronoun is standalone.
    """
    q = question.strip()
    if not q:
        return False
    words = [w.lower() for w in re.findall(r"[A-Za-z']+", q)]
    if _CONTINUATIONS.match(q) or _WHAT_ABOUT.match(q):
        return True
    if any(w in _ANAPHORA for w in words):
        return True
    has_name = bool(names_in(q))
    if not has_name and ("that" in words or len(words) <= 4):
        return True
    return False


def subject_of(history: Sequence[Turn]) -> list[str]:
    """What the conversation is about: names in the latest standalone query, else in its answer."""
    for turn in reversed(history):
        names = _subject_names(turn.standalone)
        if names:
            return names[:3]
        names = _subject_names(MARKER.sub("", turn.answer))
        if names:
            return names[:2]
    if history:
        words = sorted(content_words(history[-1].standalone), key=history[-1].standalone.lower().find)
        return words[:4]
    return []


def heuristic_rewrite(question: str, history: Sequence[Turn]) -> str:
    """Rule-based standalone version of ``question`` (returned unchanged when nothing applies)."""
    return _heuristic(question, history)[0]


def _heuristic(question: str, history: Sequence[Turn]) -> tuple[str, bool]:
    """The rule-based rewrite and whether a rule resolved the reference (False: context appended)."""
    q = question.strip()
    if not history or not is_follow_up(q):
        return q, True
    subject = subject_of(history)
    if not subject:
        return q, False
    previous = history[-1].standalone.strip()
    about = _WHAT_ABOUT.match(q)
    if about:
        x = about.group("x").strip().rstrip("?").strip()
        prev_names = _subject_names(previous)
        if names_in(x) and prev_names:
            # "What about V3?" after "When did DeepSeek release R1?" asks the same of V3.
            target = prev_names[-1]
            idx = previous.rfind(target)
            return previous[:idx] + x + previous[idx + len(target) :], True
    body = _CONTINUATIONS.sub("", q, count=1).strip() or q
    body = body[:1].upper() + body[1:]
    name = " ".join(subject[:2])
    replaced, n_it = re.subn(r"\bit\b(?!['\u2019]s)", name, body, flags=re.IGNORECASE)
    replaced, n_its = re.subn(r"\bits\b", f"{name}'s", replaced, flags=re.IGNORECASE)
    if n_it + n_its and not re.search(
        r"\b(they|them|their|he|him|his|she|her|this|that|these|those)\b", replaced, re.IGNORECASE
    ):
        return replaced, True
    return f"{body} (context: {', '.join(subject)})", False


def _stem(word: str) -> str:
    return word[:-1] if len(word) > 3 and word.endswith("s") else word


def accept_model_rewrite(candidate: str, question: str, history: Sequence[Turn]) -> str | None:
    """Clean up the model's rewrite and return it, or None when it does not look like one.

    Accepted only when it is one line of sensible length, is a question (ends with "?" or
    starts like one) asking with the follow-up's question word, keeps a content word of the
    follow-up, names something from the conversation that the follow-up did not, and is
    not simply the previous question again.
    """
    line = candidate.strip().splitlines()[0].strip() if candidate.strip() else ""
    line = (
        re.sub(r"^(standalone question|question|rewritten)\s*:\s*", "", line, flags=re.IGNORECASE)
        .strip()
        .strip("\"'\u201c\u201d")
        .strip()
    )
    if not 8 <= len(line) <= max(200, 3 * len(question)):
        return None
    if MARKER.search(line) or line.lower() == history[-1].standalone.strip().lower():
        return None
    words = re.findall(r"[a-z']+", line.lower())
    if not (line.endswith("?") or (words and words[0] in _QUESTION_STARTS)):
        return None  # small models often answer or copy the last answer instead of asking
    asked_wh = [w for w in re.findall(r"[a-z']+", question.lower()) if w in _WH]
    if asked_wh and asked_wh[0] not in words:
        return None  # "why ...?" must not come back as "when ...?"
    q_words = {_stem(w) for w in content_words(question)}
    c_words = {_stem(w) for w in content_words(line)}
    if q_words and not q_words & c_words:
        return None
    asked = question.lower()
    context_names = {
        n.lower() for turn in history[-2:] for n in names_in(turn.standalone) + names_in(MARKER.sub("", turn.answer))
    }
    if not any(n in line.lower() and n not in asked for n in context_names):
        return None
    return line


REWRITE_INSTRUCTIONS = (
    "Rewrite the follow-up question as a standalone question. Replace words like it, its, they, he, she and that "
    "with the names they refer to. Reply with the question only."
)
# Worked examples on other topics: small models copy their shape.
_EXAMPLES = (
    (
        "Conversation:\nUser: Who designed the Eiffel Tower?\nAssistant: Gustave Eiffel's company designed it.\n\nFollow-up: and when was it finished?",
        "When was the Eiffel Tower finished?",
    ),
    (
        "Conversation:\nUser: How tall is Mount Everest?\nAssistant: Mount Everest is 8,849 metres tall.\n\nFollow-up: who first climbed it?",
        "Who first climbed Mount Everest?",
    ),
)


def rewrite_messages(question: str, history: Sequence[Turn], answer_chars: int = 300) -> list[dict[str, str]]:
    """Chat messages asking a model to rewrite ``question`` using the last two turns."""
    lines = []
    for turn in history[-2:]:
        answer = " ".join(MARKER.sub("", turn.answer).split())
        if len(answer) > answer_chars:
            answer = answer[:answer_chars].rsplit(" ", 1)[0] + " …"
        lines.append(f"User: {turn.standalone}\nAssistant: {answer}")
    messages = [{"role": "system", "content": REWRITE_INSTRUCTIONS}]
    for user, assistant in _EXAMPLES:
        messages += [{"role": "user", "content": user}, {"role": "assistant", "content": assistant}]
    messages.append(
        {"role": "user", "content": "Conversation:\n" + "\n".join(lines) + f"\n\nFollow-up: {question.strip()}"}
    )
    return messages


class QueryRewriter:
    """Turns follow-up questions into standalone retrieval queries.

    Args:
        generator: the model asked first in ``auto`` mode (None: heuristic only).
        mode: ``auto`` (rules; the model, checked, when no rule resolves the reference),
            ``heuristic`` (rules only) or ``off``.
        max_new_tokens: cap on the model's rewrite.

    Example:
        >>> QueryRewriter(rag.generator).rewrite("and its licence?", [Turn("When was DeepSeek-R1 released?", "...")])
        Rewrite(query="DeepSeek-R1's licence?", method='heuristic')
        >>> QueryRewriter(rag.generator).rewrite("who founded the company?", [Turn("When was DeepSeek-R1 released?", "...")])
        Rewrite(query='Who founded DeepSeek?', method='model')   # when the model's rewrite checks out
    """

    def __init__(self, generator: Generator | None = None, *, mode: str = "auto", max_new_tokens: int = 40) -> None:
        if mode not in REWRITE_MODES:
            raise ValueError(f"rewrite mode must be one of {list(REWRITE_MODES)}, got {mode!r}")
        if max_new_tokens < 1:
            raise ValueError(f"max_new_tokens must be >= 1, got {max_new_tokens!r}")
        self.generator = generator
        self.mode = mode
        self.max_new_tokens = max_new_tokens

    def rewrite(self, question: str, history: Sequence[Turn]) -> Rewrite:
        """Standalone query for ``question`` given the finished ``history`` (oldest first).

        Generator errors are not raised: the heuristic answers instead.
        """
        q = question.strip()
        if self.mode == "off" or not history or not is_follow_up(q):
            return Rewrite(q, "unchanged")
        rewritten, resolved = _heuristic(q, history)
        # The model is only asked when no rule resolved the reference: a rewrite costs a
        # generation (seconds on a CPU) and small models rarely beat the rules.
        if self.mode == "auto" and self.generator is not None and not resolved:
            try:
                pieces = self.generator.stream(
                    rewrite_messages(q, history), max_new_tokens=self.max_new_tokens, temperature=0.0, stop=("\n",)
                )
                candidate = "".join(pieces)
            except Exception:  # a failing rewrite must not cost the user the answer
                candidate = ""
            accepted = accept_model_rewrite(candidate, q, history)
            if accepted:
                return Rewrite(accepted, "model")
        return Rewrite(rewritten, "heuristic" if rewritten != q else "unchanged")
