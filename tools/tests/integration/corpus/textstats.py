import re
from collections import Counter

WORD = re.compile(r"[a-z']+")


def words(text):
    return WORD.findall(text.lower())


def top_words(text, n=3):
    counts = Counter(words(text))
    ranked = sorted(counts.items(), key=lambda item: (-item[1], item[0]))
    return [word for word, _ in ranked[:n]]


def sentences(text):
    parts = []
    current = []
    for char in text:
        current.append(char)
        if char in ".!?":
            sentence = "".join(current).strip()
            if sentence:
                parts.append(sentence)
            current = []
    tail = "".join(current).strip()
    if tail:
        parts.append(tail)
    return parts


def summary(text):
    found = sentences(text)
    if not found:
        return {"sentences": 0, "words": 0}
    return {
        "sentences": len(found),
        "words": len(words(text)),
        "top": top_words(text),
    }
