"""Generate the PII detector's labelled set: tests/data/pii_labelled.jsonl (issue 20).

Seeded Faker in four locales (en_US, en_GB, de_DE, fr_FR): each line is a short text holding one or
two entities of known type and span among distractors that look like them and are not (order and
invoice numbers, dates and times, version strings, hashes, UUIDs, prices, ISBNs, tracking numbers).
Secrets Faker has no provider for (API keys, JWTs, high-entropy tokens, URLs with credentials) are
built from its random generator in the documented shapes. Deterministic: the same file every run.

    python benches/pii_dataset.py          # rewrites tests/data/pii_labelled.jsonl
"""

from __future__ import annotations

import base64
import json
import random
import string
from collections.abc import Callable
from pathlib import Path

from faker import Faker

SEED = 20
PER_LOCALE = 400
LOCALES = ("en_US", "en_GB", "de_DE", "fr_FR")
OUT = Path(__file__).resolve().parent.parent / "tests" / "data" / "pii_labelled.jsonl"
ALNUM = string.ascii_letters + string.digits


def _grouped(value: str, size: int = 4, sep: str = " ") -> str:
    return sep.join(value[i : i + size] for i in range(0, len(value), size))


def _b64url(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


class Maker:
    def __init__(self, locale: str, rng: random.Random):
        self.fake = Faker(locale)
        self.fake.seed_instance(rng.randrange(1 << 30))
        self.rng = rng
        self.locale = locale

    def token(self, n: int, alphabet: str = ALNUM) -> str:
        return "".join(self.rng.choice(alphabet) for _ in range(n))

    # -- entities: (type, value) -------------------------------------------------------------------
    def entities(self) -> list[Callable[[], tuple[str, str]]]:
        f, r = self.fake, self.rng
        makers: list[Callable[[], tuple[str, str]]] = [
            lambda: ("email", f.email()),
            lambda: ("phone", f.phone_number()),
            lambda: (
                "credit_card",
                (lambda n: n if r.random() < 0.5 else _grouped(n, 4, r.choice(" -")))(f.credit_card_number()),
            ),
            lambda: ("iban", (lambda n: n if r.random() < 0.5 else _grouped(n))(f.iban())),
            lambda: ("ipv4", f.ipv4()),
            lambda: ("ipv6", f.ipv6()),
            lambda: (
                "url_credentials",
                f"{r.choice(['https', 'postgres', 'redis', 'ftp'])}://{f.user_name()}:{self.token(12)}@{f.domain_name()}/{f.uri_path()}",
            ),
            lambda: (
                "api_key",
                r.choice(
                    [
                        "sk-proj-" + self.token(48, ALNUM + "_-"),
                        "sk-ant-api03-" + self.token(40, ALNUM + "_-"),
                        "AKIA" + self.token(16, string.ascii_uppercase + string.digits),
                        "ghp_" + self.token(36),
                        "xoxb-" + self.token(10, string.digits) + "-" + self.token(24),
                        "AIza" + self.token(35, ALNUM + "_-"),
                    ]
                ),
            ),
            lambda: (
                "jwt",
                ".".join(
                    [
                        _b64url(b'{"alg":"HS256","typ":"JWT"}'),
                        _b64url(json.dumps({"sub": f.user_name(), "iat": r.randrange(10**9, 2 * 10**9)}).encode()),
                        _b64url(r.randbytes(32)),
                    ]
                ),
            ),
            lambda: ("secret", self.token(40)),
        ]
        if self.locale == "en_US":
            makers.append(lambda: ("us_ssn", f.ssn()))
        return makers

    # -- distractors --------------------------------------------------------------------------------
    def distractor(self) -> str:
        f, r = self.fake, self.rng
        return r.choice(
            [
                lambda: f"order #{r.randrange(10**7, 10**12)}",
                lambda: f"invoice INV-{r.randrange(2015, 2027)}-{r.randrange(10**5, 10**6)}",
                lambda: f"on {f.date()}",
                lambda: f"at {f.time()}",
                lambda: f"at {f.iso8601()}",
                lambda: f"version {r.randrange(0, 20)}.{r.randrange(0, 40)}.{r.randrange(0, 100)}",
                lambda: f"commit {f.sha1()}",
                lambda: f"request {f.uuid4()}",
                lambda: f"total {f.pricetag()}",
                lambda: f"ISBN {f.isbn13()}",
                lambda: f"tracking 1Z{self.token(6, string.ascii_uppercase + string.digits)}{r.randrange(10**9, 10**10)}",
                lambda: f"room {r.randrange(100, 999)}, floor {r.randrange(1, 40)}",
                lambda: f"postcode {f.postcode()}",
                lambda: f"ratio {r.random():.6f}",
            ]
        )()


TEMPLATES = (
    "Hi {name}, please note {d1}: {e1}. Thanks, {d2}.",
    "{d1} — contact {e1} or {e2} ({d2}).",
    "Ticket {d1}: user reported {e1}; see {d2}.",
    "{e1}",
    "As discussed {d1}, the value is {e1} and {d2}.",
)


def sample(maker: Maker) -> dict[str, object]:
    rng = maker.rng
    template = rng.choice(TEMPLATES)
    makers = maker.entities()
    parts: dict[str, str] = {"name": maker.fake.first_name(), "d1": maker.distractor(), "d2": maker.distractor()}
    labels: list[tuple[str, str]] = []
    for slot in ("e1", "e2"):
        if "{" + slot + "}" in template:
            kind, value = rng.choice(makers)()
            parts[slot] = value
            labels.append((kind, value))
    text = template.format(**parts)
    spans = []
    for kind, value in labels:
        start = text.index(value)
        spans.append([kind, start, start + len(value)])
    return {"locale": maker.locale, "text": text, "labels": spans}


def main() -> None:
    rng = random.Random(SEED)
    lines = []
    for locale in LOCALES:
        maker = Maker(locale, rng)
        lines += [json.dumps(sample(maker), ensure_ascii=False) for _ in range(PER_LOCALE)]
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text("\n".join(lines) + "\n")
    print(f"{len(lines)} samples → {OUT}")


if __name__ == "__main__":
    main()
