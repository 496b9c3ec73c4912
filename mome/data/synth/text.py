"""Sentences for the synthetic corpus: a small English grammar over fixed word lists.

The grammar gives the transcripts real structure (determiners before nouns, verb forms that agree,
questions, numbers with plurals) so that a language model has something to learn, and a vocabulary
of several hundred words so that lip reading and speech recognition are not a code book. Every
sentence is lower case words separated by single spaces, with no punctuation: what espeak-ng reads
and, upper-cased, what the LRS ``Text:`` line holds.
"""

from __future__ import annotations

from collections.abc import Callable, Collection

import numpy as np

# (singular, plural)
NOUNS = [
    ("man", "men"),
    ("woman", "women"),
    ("child", "children"),
    ("teacher", "teachers"),
    ("doctor", "doctors"),
    ("farmer", "farmers"),
    ("driver", "drivers"),
    ("student", "students"),
    ("friend", "friends"),
    ("neighbour", "neighbours"),
    ("captain", "captains"),
    ("painter", "painters"),
    ("baker", "bakers"),
    ("singer", "singers"),
    ("soldier", "soldiers"),
    ("nurse", "nurses"),
    ("pilot", "pilots"),
    ("lawyer", "lawyers"),
    ("writer", "writers"),
    ("player", "players"),
    ("dog", "dogs"),
    ("cat", "cats"),
    ("horse", "horses"),
    ("bird", "birds"),
    ("fish", "fish"),
    ("rabbit", "rabbits"),
    ("mouse", "mice"),
    ("cow", "cows"),
    ("sheep", "sheep"),
    ("goat", "goats"),
    ("book", "books"),
    ("letter", "letters"),
    ("box", "boxes"),
    ("bag", "bags"),
    ("cup", "cups"),
    ("plate", "plates"),
    ("chair", "chairs"),
    ("table", "tables"),
    ("door", "doors"),
    ("window", "windows"),
    ("key", "keys"),
    ("phone", "phones"),
    ("picture", "pictures"),
    ("clock", "clocks"),
    ("lamp", "lamps"),
    ("bottle", "bottles"),
    ("basket", "baskets"),
    ("ball", "balls"),
    ("ticket", "tickets"),
    ("coat", "coats"),
    ("shoe", "shoes"),
    ("hat", "hats"),
    ("ring", "rings"),
    ("map", "maps"),
    ("rope", "ropes"),
    ("boat", "boats"),
    ("car", "cars"),
    ("train", "trains"),
    ("bus", "buses"),
    ("bicycle", "bicycles"),
    ("house", "houses"),
    ("garden", "gardens"),
    ("river", "rivers"),
    ("road", "roads"),
    ("bridge", "bridges"),
    ("church", "churches"),
    ("school", "schools"),
    ("market", "markets"),
    ("village", "villages"),
    ("city", "cities"),
    ("forest", "forests"),
    ("mountain", "mountains"),
    ("island", "islands"),
    ("kitchen", "kitchens"),
    ("office", "offices"),
    ("shop", "shops"),
    ("field", "fields"),
    ("hill", "hills"),
    ("apple", "apples"),
    ("orange", "oranges"),
    ("cake", "cakes"),
    ("egg", "eggs"),
    ("potato", "potatoes"),
    ("song", "songs"),
    ("story", "stories"),
    ("game", "games"),
    ("question", "questions"),
    ("idea", "ideas"),
    ("plan", "plans"),
    ("problem", "problems"),
    ("machine", "machines"),
    ("computer", "computers"),
    ("camera", "cameras"),
    ("engine", "engines"),
    ("flower", "flowers"),
    ("tree", "trees"),
    ("stone", "stones"),
    ("cloud", "clouds"),
    ("star", "stars"),
    ("wall", "walls"),
    ("room", "rooms"),
    ("garage", "garages"),
]
MASS_NOUNS = [
    "water",
    "bread",
    "milk",
    "coffee",
    "music",
    "money",
    "paper",
    "sand",
    "snow",
    "rice",
    "news",
    "furniture",
    "homework",
    "advice",
    "information",
]
# (base, third person singular, past)
TRANSITIVE_VERBS = [
    ("see", "sees", "saw"),
    ("find", "finds", "found"),
    ("take", "takes", "took"),
    ("bring", "brings", "brought"),
    ("carry", "carries", "carried"),
    ("paint", "paints", "painted"),
    ("clean", "cleans", "cleaned"),
    ("open", "opens", "opened"),
    ("close", "closes", "closed"),
    ("sell", "sells", "sold"),
    ("buy", "buys", "bought"),
    ("need", "needs", "needed"),
    ("want", "wants", "wanted"),
    ("like", "likes", "liked"),
    ("move", "moves", "moved"),
    ("push", "pushes", "pushed"),
    ("pull", "pulls", "pulled"),
    ("fix", "fixes", "fixed"),
    ("break", "breaks", "broke"),
    ("hide", "hides", "hid"),
    ("watch", "watches", "watched"),
    ("visit", "visits", "visited"),
    ("follow", "follows", "followed"),
    ("catch", "catches", "caught"),
    ("drop", "drops", "dropped"),
    ("keep", "keeps", "kept"),
    ("lose", "loses", "lost"),
    ("build", "builds", "built"),
    ("draw", "draws", "drew"),
    ("wash", "washes", "washed"),
    ("cook", "cooks", "cooked"),
    ("read", "reads", "read"),
    ("check", "checks", "checked"),
    ("borrow", "borrows", "borrowed"),
    ("show", "shows", "showed"),
    ("remember", "remembers", "remembered"),
    ("describe", "describes", "described"),
    ("fill", "fills", "filled"),
]
INTRANSITIVE_VERBS = [
    ("sleep", "sleeps", "slept"),
    ("laugh", "laughs", "laughed"),
    ("wait", "waits", "waited"),
    ("arrive", "arrives", "arrived"),
    ("leave", "leaves", "left"),
    ("sing", "sings", "sang"),
    ("dance", "dances", "danced"),
    ("smile", "smiles", "smiled"),
    ("work", "works", "worked"),
    ("run", "runs", "ran"),
    ("swim", "swims", "swam"),
    ("travel", "travels", "travelled"),
    ("listen", "listens", "listened"),
    ("return", "returns", "returned"),
    ("stop", "stops", "stopped"),
    ("fall", "falls", "fell"),
    ("rest", "rests", "rested"),
    ("talk", "talks", "talked"),
]
ADJECTIVES = [
    "big",
    "small",
    "old",
    "new",
    "young",
    "long",
    "short",
    "heavy",
    "light",
    "warm",
    "cold",
    "hot",
    "quiet",
    "loud",
    "busy",
    "empty",
    "full",
    "clean",
    "dirty",
    "dark",
    "bright",
    "happy",
    "sad",
    "tired",
    "hungry",
    "famous",
    "strange",
    "simple",
    "careful",
    "gentle",
    "strong",
    "narrow",
    "wide",
    "deep",
    "soft",
    "hard",
    "red",
    "blue",
    "green",
    "yellow",
    "white",
    "black",
    "brown",
    "golden",
    "silver",
    "wooden",
    "broken",
    "lovely",
    "useful",
    "expensive",
    "cheap",
    "beautiful",
    "ugly",
    "clever",
    "lucky",
    "brave",
    "polite",
]
ADVERBS = [
    "quickly",
    "slowly",
    "quietly",
    "carefully",
    "again",
    "together",
    "outside",
    "inside",
    "early",
    "late",
    "already",
    "almost",
    "never",
    "always",
    "often",
    "sometimes",
    "suddenly",
    "finally",
]
TIMES = [
    "today",
    "yesterday",
    "tomorrow",
    "tonight",
    "last week",
    "next year",
    "this morning",
    "every day",
    "on monday",
    "on friday",
    "in the evening",
    "after lunch",
    "before dinner",
    "in april",
    "in the summer",
    "at night",
]
PREPOSITIONS = [
    "in",
    "on",
    "under",
    "behind",
    "near",
    "beside",
    "above",
    "into",
    "from",
    "across",
    "through",
    "past",
    "towards",
    "without",
    "with",
]
SUBJECT_PRONOUNS = [
    ("i", False),
    ("you", False),
    ("we", False),
    ("they", False),
    ("he", True),
    ("she", True),
    ("it", True),
]
OBJECT_PRONOUNS = ["me", "you", "us", "them", "him", "her", "it"]
NUMBERS = [
    "two",
    "three",
    "four",
    "five",
    "six",
    "seven",
    "eight",
    "nine",
    "ten",
    "eleven",
    "twelve",
    "twenty",
    "forty",
    "hundred",
]
DETERMINERS_SINGULAR = ["the", "a", "this", "that", "my", "your", "our", "their", "his", "her", "every"]
DETERMINERS_PLURAL = ["the", "these", "those", "my", "your", "our", "their", "some", "many", "few"]
NAMES = [
    "john",
    "mary",
    "peter",
    "susan",
    "david",
    "emma",
    "james",
    "laura",
    "robert",
    "anna",
    "thomas",
    "helen",
    "daniel",
    "sarah",
    "michael",
    "alice",
    "george",
    "kate",
    "paul",
    "lucy",
]
MODALS = ["will", "can", "should", "must", "might", "could", "would"]
WH_WORDS = ["where", "when", "why", "how"]


def _a(word: str) -> str:
    return "an" if word[0] in "aeiou" else "a"


class Grammar:
    """Draws sentences from a fixed set of templates; all randomness comes from the given generator."""

    def __init__(self, rng: np.random.Generator):
        self.rng = rng
        self.templates: list[Callable[[], list[str]]] = [
            self.svo_past,
            self.svo_present,
            self.svo_past,
            self.copula,
            self.intransitive,
            self.question,
            self.modal,
            self.imperative,
            self.numbers,
            self.reported,
            self.name_sentence,
            self.there_is,
        ]

    def pick(self, items):
        return items[self.rng.integers(len(items))]

    def maybe(self, p: float) -> bool:
        return bool(self.rng.random() < p)

    # noun phrases --------------------------------------------------------------------------------
    def noun_phrase(self, plural: bool | None = None, adjective_p: float = 0.4) -> list[str]:
        if plural is None:
            plural = self.maybe(0.3)
        noun = self.pick(NOUNS)[1 if plural else 0]
        adjective = [self.pick(ADJECTIVES)] if self.maybe(adjective_p) else []
        if plural:
            det = self.pick(DETERMINERS_PLURAL)
        else:
            det = self.pick(DETERMINERS_SINGULAR)
            if det == "a":
                det = _a((adjective or [noun])[0])
        return [det, *adjective, noun]

    def object_phrase(self) -> list[str]:
        r = self.rng.random()
        if r < 0.12:
            return [self.pick(OBJECT_PRONOUNS)]
        if r < 0.22:
            return ["the", self.pick(MASS_NOUNS)] if self.maybe(0.5) else ["some", self.pick(MASS_NOUNS)]
        return self.noun_phrase()

    def subject(self) -> tuple[list[str], bool]:
        """The subject and whether it is third person singular."""
        r = self.rng.random()
        if r < 0.3:
            pronoun, singular = self.pick(SUBJECT_PRONOUNS)
            return [pronoun], singular
        if r < 0.4:
            return [self.pick(NAMES)], True
        plural = self.maybe(0.3)
        return self.noun_phrase(plural), not plural

    def place(self) -> list[str]:
        return [self.pick(PREPOSITIONS), *self.noun_phrase(adjective_p=0.25)]

    def tail(self) -> list[str]:
        r = self.rng.random()
        if r < 0.3:
            return self.place()
        if r < 0.45:
            return self.pick(TIMES).split()
        if r < 0.55:
            return [self.pick(ADVERBS)]
        return []

    # templates -----------------------------------------------------------------------------------
    def svo_past(self) -> list[str]:
        subject, _ = self.subject()
        return [*subject, self.pick(TRANSITIVE_VERBS)[2], *self.object_phrase(), *self.tail()]

    def svo_present(self) -> list[str]:
        subject, singular = self.subject()
        verb = self.pick(TRANSITIVE_VERBS)[1 if singular else 0]
        return [*subject, verb, *self.object_phrase(), *self.tail()]

    def intransitive(self) -> list[str]:
        subject, _ = self.subject()
        return [*subject, self.pick(INTRANSITIVE_VERBS)[2], *self.tail()]

    def copula(self) -> list[str]:
        subject, singular = self.subject()
        if subject == ["i"]:
            verb = self.pick(["am", "was"])
        else:
            verb = self.pick(["is", "was"] if singular else ["are", "were"])
        adverb = [self.pick(["very", "really", "quite", "not"])] if self.maybe(0.3) else []
        return [*subject, verb, *adverb, self.pick(ADJECTIVES), *(self.place() if self.maybe(0.3) else [])]

    def question(self) -> list[str]:
        subject, singular = self.subject()
        aux = self.pick(["did", "does" if singular else "do"]) if subject != ["i"] else "did"
        verb = self.pick(TRANSITIVE_VERBS)[0]
        if self.maybe(0.5):
            return [self.pick(WH_WORDS), aux, *subject, verb, *self.object_phrase()]
        return [aux, *subject, verb, *self.object_phrase(), *self.tail()]

    def modal(self) -> list[str]:
        subject, _ = self.subject()
        if self.maybe(0.5):
            return [*subject, self.pick(MODALS), self.pick(TRANSITIVE_VERBS)[0], *self.object_phrase(), *self.tail()]
        return [*subject, self.pick(MODALS), self.pick(INTRANSITIVE_VERBS)[0], *self.tail()]

    def imperative(self) -> list[str]:
        start = ["please"] if self.maybe(0.25) else []
        return [*start, self.pick(TRANSITIVE_VERBS)[0], *self.noun_phrase(), *self.place()]

    def numbers(self) -> list[str]:
        noun = self.pick(NOUNS)[1]
        adjective = [self.pick(ADJECTIVES)] if self.maybe(0.3) else []
        return [self.pick(NUMBERS), *adjective, noun, self.pick(INTRANSITIVE_VERBS)[2], *self.tail()]

    def reported(self) -> list[str]:
        subject, _ = self.subject()
        verb = self.pick(["said", "thought", "knew", "heard", "believed"])
        clause_subject, singular = self.subject()
        be = "was" if singular or clause_subject == ["i"] else "were"
        return [*subject, verb, "that", *clause_subject, be, self.pick(ADJECTIVES)]

    def name_sentence(self) -> list[str]:
        return [
            self.pick(NAMES),
            self.pick(["gave", "sent", "showed", "sold"]),
            self.pick(NAMES),
            *self.noun_phrase(adjective_p=0.5),
        ]

    def there_is(self) -> list[str]:
        plural = self.maybe(0.4)
        be = self.pick(["are", "were"] if plural else ["is", "was"])
        if plural:
            noun = [self.pick(NUMBERS + ["some", "many", "no"]), self.pick(NOUNS)[1]]
        else:
            noun = self.noun_phrase(False, adjective_p=0.5)
            noun[0] = _a(noun[1])
        return ["there", be, *noun, *self.place()]

    # public --------------------------------------------------------------------------------------
    def sentence(self, min_words: int = 2, max_words: int = 9) -> str:
        """One sentence of ``min_words`` to ``max_words`` words (templates are drawn until one fits)."""
        for _ in range(1000):
            words = self.templates[self.rng.integers(len(self.templates))]()
            if min_words <= len(words) <= max_words:
                return " ".join(words)
        raise ValueError(f"no sentence of {min_words}..{max_words} words after 1000 draws")


def make_sentences(
    rng: np.random.Generator, count: int, min_words: int = 2, max_words: int = 9, exclude: Collection[str] = ()
) -> list[str]:
    """``count`` distinct sentences, none of them in ``exclude`` (used to keep test sentences out of training)."""
    grammar = Grammar(rng)
    seen = set(exclude)
    out: list[str] = []
    for _ in range(count * 100):
        s = grammar.sentence(min_words, max_words)
        if s not in seen:
            seen.add(s)
            out.append(s)
            if len(out) == count:
                return out
    raise ValueError(f"could draw only {len(out)} of {count} distinct sentences of {min_words}..{max_words} words")


def vocabulary() -> set[str]:
    """Every word the grammar can produce."""
    words: set[str] = set()
    for pair in NOUNS:
        words.update(pair)
    for forms in TRANSITIVE_VERBS + INTRANSITIVE_VERBS:
        words.update(forms)
    for group in (
        MASS_NOUNS,
        ADJECTIVES,
        ADVERBS,
        PREPOSITIONS,
        OBJECT_PRONOUNS,
        NUMBERS,
        DETERMINERS_SINGULAR,
        DETERMINERS_PLURAL,
        NAMES,
        MODALS,
        WH_WORDS,
    ):
        words.update(group)
    for t in TIMES:
        words.update(t.split())
    words.update(p for p, _ in SUBJECT_PRONOUNS)
    words.update(
        [
            "an",
            "am",
            "is",
            "was",
            "are",
            "were",
            "very",
            "really",
            "quite",
            "not",
            "did",
            "does",
            "do",
            "please",
            "said",
            "thought",
            "knew",
            "heard",
            "believed",
            "that",
            "gave",
            "sent",
            "showed",
            "sold",
            "there",
            "some",
            "many",
            "no",
        ]
    )
    return words
