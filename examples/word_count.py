"""Counts the words of a text file and writes the most frequent ones to word_counts.json.

    rgrid run examples/word_count.py examples/data/poem.txt --wait

The input file is uploaded and appears at the same relative path in the runner's working
directory; word_counts.json, created there, is collected as an output of the execution.
"""

import collections
import json
import re
import sys


def main():
    if len(sys.argv) != 2:
        print("usage: word_count.py TEXT_FILE", file=sys.stderr)
        return 2
    with open(sys.argv[1], encoding="utf-8") as handle:
        words = re.findall(r"[a-z']+", handle.read().lower())
    counts = collections.Counter(words)
    top = counts.most_common(10)
    with open("word_counts.json", "w", encoding="utf-8") as handle:
        json.dump({"words": len(words), "distinct": len(counts), "top": top}, handle, indent=2)
    print(f"{len(words)} words, {len(counts)} distinct; most frequent: {', '.join(w for w, _ in top[:5])}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
