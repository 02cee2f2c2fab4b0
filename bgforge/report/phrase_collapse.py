"""ASPIRE's phrase collapse and ranking, as its released code does them
(Sreyan88/ASPIRE `Grounded-Segment-Anything/Inpaint-Anything/parse_top_k_classes.py`).

Collapse (`get_collapsed_categories`, lines 43-75): each phrase (hyphens made spaces, line 102)
is Porter-stemmed as one string, then WordNet-lemmatised, and joins the first cluster holding a
phrase whose CountVectorizer cosine with it is >= 0.7 (tokens of 2+ word characters, lower
case), visiting phrases by decreasing flips. The WordNet step needs NLTK's `wordnet` data,
which is downloaded, not installed: without it the stem is used as it is (recorded in the
report); a stem is rarely a word WordNet would change.

Ranking (lines 198-222): a cluster's score is the sum over its phrases of flips / occurrences,
occurrences counting the phrase in the foreground and background lists of the class's
correctly classified images (phrases never grounded included); clusters sorted by (score,
flips, index) descending, as the reference sorts its tuples.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from functools import lru_cache

COSINE_THRESHOLD = 0.7
_TOKEN = re.compile(r"(?u)\b\w\w+\b")   # scikit-learn CountVectorizer's default token pattern


@lru_cache(maxsize=1)
def _tools():
    from nltk.stem import PorterStemmer

    try:
        from nltk.stem import WordNetLemmatizer

        lemmatizer = WordNetLemmatizer()
        lemmatizer.lemmatize("dogs")   # raises LookupError without the wordnet data
    except LookupError:
        lemmatizer = None
    return PorterStemmer(), lemmatizer


def lemmatizer_note() -> str:
    return "WordNet lemmatizer" if _tools()[1] is not None else "no WordNet data installed: Porter stems as they are"


def reference_form(phrase: str) -> str:
    """lemmatize(stem(phrase)) of the phrase with hyphens as spaces."""
    stemmer, lemmatizer = _tools()
    stemmed = stemmer.stem(str(phrase).replace("-", " "))
    return lemmatizer.lemmatize(stemmed) if lemmatizer is not None else stemmed


def count_cosine(a: str, b: str) -> float:
    """The cosine of two strings' CountVectorizer vectors (0 when either has no token)."""
    ca, cb = Counter(_TOKEN.findall(a.lower())), Counter(_TOKEN.findall(b.lower()))
    dot = sum(n * cb[t] for t, n in ca.items())
    norm = math.sqrt(sum(n * n for n in ca.values())) * math.sqrt(sum(n * n for n in cb.values()))
    return dot / norm if norm else 0.0


def clusters(phrases: list[str], threshold: float = COSINE_THRESHOLD) -> list[list[str]]:
    """`find_similar_items`: each phrase joins the first cluster with any member similar enough."""
    found: list[list[tuple[str, str]]] = []
    for phrase in phrases:
        form = reference_form(phrase)
        home = next((c for c in found if any(count_cosine(form, f) >= threshold for _, f in c)), None)
        if home is None:
            found.append([(phrase, form)])
        else:
            home.append((phrase, form))
    return [[p for p, _ in c] for c in found]


def ranked(flips: dict[str, int], occurrences: dict[str, int]) -> list[dict]:
    """Clusters of the flipping phrases ({phrase: flips}), ranked by the reference's score."""
    order = sorted(flips, key=lambda p: -flips[p])   # sorted_fg: by count, ties in first-seen order
    scored = []
    for idx, members in enumerate(clusters(order)):
        count = sum(flips[p] for p in members)
        score = sum(flips[p] / occurrences[p] if occurrences.get(p) else float(flips[p]) for p in members)
        scored.append({"score": score, "count": count, "idx": idx, "members": members})
    scored.sort(key=lambda c: (c["score"], c["count"], c["idx"]), reverse=True)
    return scored
