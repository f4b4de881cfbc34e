"""Precision and recall of the PII detector per entity type on tests/data/pii_labelled.jsonl
(benches/pii_dataset.py), and Microsoft Presidio's analyzer on the same texts when it is importable.

A prediction is a true positive when its type is the gold span's and the two spans overlap; a
prediction that overlaps no gold span of its type (a distractor, or a wrong type) is a false positive.

    PYTHONPATH=python python benches/pii_quality.py              # gatecore only
    PYTHONPATH=python /tmp/presidio-venv/bin/python benches/pii_quality.py --presidio
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import Counter
from collections.abc import Callable, Iterable
from pathlib import Path

DATA = Path(__file__).resolve().parent.parent / "tests" / "data" / "pii_labelled.jsonl"
Span = tuple[str, int, int]


def load(path: Path = DATA) -> list[tuple[str, list[Span]]]:
    """(text, gold spans) of every sample."""
    out = []
    for line in path.read_text().splitlines():
        doc = json.loads(line)
        out.append((doc["text"], [(k, s, e) for k, s, e in doc["labels"]]))
    return out


def score(
    samples: Iterable[tuple[str, list[Span]]], predict: Callable[[str], list[Span]], kinds: set[str] | None = None
) -> dict[str, tuple[int, int, int]]:
    """type → (true positives, false positives, false negatives)."""
    tp: Counter[str] = Counter()
    fp: Counter[str] = Counter()
    fn: Counter[str] = Counter()
    for text, gold in samples:
        predicted = predict(text)
        for kind, s, e in predicted:
            if kinds is not None and kind not in kinds:
                continue
            if any(k == kind and s < ge and gs < e for k, gs, ge in gold):
                tp[kind] += 1
            else:
                fp[kind] += 1
        for kind, gs, ge in gold:
            if kinds is not None and kind not in kinds:
                continue
            if not any(k == kind and s < ge and gs < e for k, s, e in predicted):
                fn[kind] += 1
    every = set(tp) | set(fp) | set(fn)
    return {k: (tp[k], fp[k], fn[k]) for k in sorted(every)}


def gatecore_predict() -> Callable[[str], list[Span]]:
    from gatecore._core import PiiScanner

    scanner = PiiScanner(PiiScanner.builtin_kinds())
    kinds = scanner.kinds
    return lambda text: [(kinds[k], s, e) for k, s, e in scanner.scan(text)]


# Presidio's entity names → ours (the ones it has; it has no API keys, JWTs or credential URLs).
PRESIDIO = {
    "EMAIL_ADDRESS": "email",
    "PHONE_NUMBER": "phone",
    "CREDIT_CARD": "credit_card",
    "IBAN_CODE": "iban",
    "US_SSN": "us_ssn",
}


def presidio_predict() -> Callable[[str], list[Span]]:
    """Presidio's pattern recognizers over a blank spaCy English pipeline: its trained NER models are
    downloaded from outside PyPI, which this machine cannot reach; none of the types compared here
    uses NER (they are regexes, checksums and context words)."""
    import tempfile

    import spacy
    from presidio_analyzer import AnalyzerEngine
    from presidio_analyzer.nlp_engine import SpacyNlpEngine

    path = Path(tempfile.mkdtemp()) / "blank_en"
    spacy.blank("en").to_disk(path)
    engine = SpacyNlpEngine(models=[{"lang_code": "en", "model_name": str(path)}])
    analyzer = AnalyzerEngine(nlp_engine=engine, supported_languages=["en"])

    def predict(text: str) -> list[Span]:
        out = []
        for r in analyzer.analyze(text=text, language="en"):
            if r.entity_type == "IP_ADDRESS":
                kind = "ipv6" if ":" in text[r.start : r.end] else "ipv4"
            else:
                kind = PRESIDIO.get(r.entity_type, "")
            if kind:
                out.append((kind, r.start, r.end))
        return out

    return predict


def table(name: str, results: dict[str, tuple[int, int, int]]) -> None:
    print(f"\n{name}\n| type | gold | TP | FP | FN | precision | recall |\n|---|---|---|---|---|---|---|")
    for kind, (tp, fp, fn) in results.items():
        precision = tp / (tp + fp) if tp + fp else float("nan")
        recall = tp / (tp + fn) if tp + fn else float("nan")
        print(f"| {kind} | {tp + fn} | {tp} | {fp} | {fn} | {precision:.3f} | {recall:.3f} |")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--presidio", action="store_true", help="also run Presidio's analyzer")
    args = parser.parse_args()
    samples = load()
    print(f"{len(samples)} samples, {sum(len(g) for _, g in samples)} entities ({DATA.name})")
    table("gatecore (rust/src/pii)", score(samples, gatecore_predict()))
    if args.presidio:
        kinds = {*PRESIDIO.values(), "ipv4", "ipv6"}
        table("Presidio analyzer (pattern recognizers)", score(samples, presidio_predict(), kinds))
        table("gatecore on the same types", score(samples, gatecore_predict(), kinds))
    sys.stdout.flush()


if __name__ == "__main__":
    main()
