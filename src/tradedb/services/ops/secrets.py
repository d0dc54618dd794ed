"""What a secret looks like, so that bot_config can refuse one (see services.ops.config).

A key is judged by its words (split at punctuation and camelCase): one naming a key,
secret, password, passphrase, token, webhook or private key names a secret. A value is
judged by its shape: the formats of well-known credentials (Telegram bot tokens, Discord,
Slack and Teams webhook URLs, AWS access keys, JWTs, PEM private keys, GitHub, Slack,
Stripe and Google tokens), a URL carrying a password or a secret-named query parameter,
and long random tokens, such as exchange API keys and secrets.

Long random tokens are told from public values by their make-up. Hexadecimal strings
(hashes, transaction ids, UUIDs, Ethereum addresses), base58 strings of an address's or a
signature's length, bech32 addresses, and strings of words (identifiers, paths, file
names, dates) pass; a string of 32 or more characters that is neither, with the
character spread of random text, does not. A secret written in hex, or shorter than 32
characters, can only be caught by its key's name.
"""

from __future__ import annotations

import math
import re
from collections import Counter

# --- keys ------------------------------------------------------------------------------

# Roots that name a secret wherever they appear in a word (apiSecret, bot_token, passwd).
_SECRET_ROOTS = (
    "secret",
    "passw",
    "passphrase",
    "token",
    "webhook",
    "private",
    "privkey",
    "apikey",
    "mnemonic",
    "credential",
    "bearer",
    "authorization",
)
# Words that name a secret on their own.
_SECRET_WORDS = frozenset({"key", "keys", "pwd", "pass", "jwt", "seedphrase"})
# Pairs of words that are public although one of them names a secret: freqtrade's
# VolumePairList sorts by `sort_key`.
_PUBLIC_PAIRS = frozenset({("sort", "key")})
_WORD = re.compile(r"[A-Z]+(?![a-z])|[A-Z]?[a-z]+|\d+")


def names_a_secret(key: str) -> bool:
    """Whether a setting's key, or a key inside a JSON value, names a secret."""
    words = [word.lower() for word in _WORD.findall(key)]
    joined = "".join(words)
    if any(root in joined for root in _SECRET_ROOTS) or "seedphrase" in joined:
        return True
    return any(
        word in _SECRET_WORDS and (words[index - 1] if index else "", word) not in _PUBLIC_PAIRS
        for index, word in enumerate(words)
    )


# --- values ----------------------------------------------------------------------------

_CREDENTIAL_FORMATS = (
    ("a PEM private key", re.compile(r"-----BEGIN [A-Z0-9 ]*PRIVATE KEY")),
    ("a Telegram bot token", re.compile(r"(?<![0-9])[0-9]{5,12}:[A-Za-z0-9_-]{30,}")),
    (
        "a webhook URL",
        re.compile(
            r"https?://(?:(?:ptb|canary)\.)?discord(?:app)?\.com/api(?:/v\d+)?/webhooks/"
            r"|https?://hooks\.slack\.com/|https?://[\w.-]*webhook\.office\.com/"
            r"|https?://hooks\.zapier\.com/|https?://maker\.ifttt\.com/",
            re.IGNORECASE,
        ),
    ),
    (
        "an AWS access key",
        re.compile(r"(?<![A-Z0-9])(?:AKIA|ASIA|ABIA|ACCA)[A-Z0-9]{16}(?![A-Z0-9])"),
    ),
    ("a JSON Web Token", re.compile(r"eyJ[A-Za-z0-9_-]{4,}\.eyJ[A-Za-z0-9_-]{4,}\.")),
    (
        "an access token",
        re.compile(
            r"(?<![A-Za-z0-9])(?:gh[pousr]_[A-Za-z0-9]{30,}|github_pat_[A-Za-z0-9_]{30,}"
            r"|xox[abposr]-[A-Za-z0-9-]{10,}|[rs]k_live_[A-Za-z0-9]{16,}"
            r"|AIza[A-Za-z0-9_-]{35})"
        ),
    ),
    ("a URL with a password", re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://[^\s/:@]+:[^\s/@]+@")),
)
_QUERY_PARAMETER = re.compile(r"[?&]([A-Za-z0-9_.-]+)=[^&#\s]")

# Runs of the characters API keys and secrets are written in (base64, base64url, base62).
_TOKEN = re.compile(r"[A-Za-z0-9+/=_-]{32,}")
_HEX = re.compile(r"(?:0x)?[0-9a-fA-F]+(?:-[0-9a-fA-F]+)*")
_BASE58 = re.compile(r"[1-9A-HJ-NP-Za-km-z]+")
# Base58 addresses and signatures by length: Bitcoin, Litecoin, Dogecoin, Dash, Tron and
# XRP addresses (25 to 35, led by their network's version character), Solana addresses
# (43, 44: a 32-byte number is shorter one time in a thousand), Cardano's Byron addresses
# (58, 59, 104), Solana signatures (86 to 88) and Monero addresses (95, 106). A random
# token of such a length written without 0, O, I, l and punctuation cannot be told from
# an address (about 1 in 70 of 43-character base64url tokens is).
_BASE58_LENGTHS = (range(43, 45), range(58, 60), range(86, 89), range(95, 96), range(104, 107))
_VERSIONED_ADDRESS_LENGTHS = range(25, 36)
_ADDRESS_VERSIONS = frozenset("13LMD9AXTr")
_BECH32 = re.compile(r"[a-z]{1,83}1[02-9ac-hj-np-z]{6,}")
# A chunk of a token: a word, an acronym, or a number.
_CHUNK = re.compile(r"[A-Z]?[a-z]+|[A-Z]+(?![a-z])|\d+")
_VOWELS = frozenset("aeiouyAEIOUY")
_CONSONANTS = re.compile(r"[b-df-hj-np-tv-xzB-DF-HJ-NP-TV-XZ]{4,}")
# Measured over random base62, base64 and base36 tokens of 32 to 88 characters against
# identifiers, paths and file names: random text is under 0.7 words and numbers (about
# 0.45 on average) with an entropy above 3.5 bits a character; those are 0.7 to 1
# (docs/decisions.md has the rates).
_MOST_STRUCTURE = 0.7
_LEAST_ENTROPY = 3.5


def credential_in(text: str) -> str | None:
    """What a text holds that looks like a credential ("a Telegram bot token"), or None."""
    for what, pattern in _CREDENTIAL_FORMATS:
        if pattern.search(text):
            return what
    for match in _QUERY_PARAMETER.finditer(text):
        if names_a_secret(match[1]):
            return f"a URL whose {match[1]!r} parameter holds a secret"
    if any(_looks_random(token) for token in _TOKEN.findall(text)):
        return "an API key or secret (a long random token)"
    return None


def _looks_random(token: str) -> bool:
    if _is_public_form(token):
        return False
    alphanumeric = sum(character.isalnum() for character in token)
    structured = sum(len(chunk) for chunk in _CHUNK.findall(token) if _is_word_or_number(chunk))
    return structured < _MOST_STRUCTURE * alphanumeric and _entropy(token) >= _LEAST_ENTROPY


def _is_public_form(token: str) -> bool:
    """Hex (hashes, ids, Ethereum addresses), a base58 address or signature, a bech32
    address, or letters or digits alone."""
    if _HEX.fullmatch(token) or _BECH32.fullmatch(token):
        return True
    if _BASE58.fullmatch(token):
        if any(len(token) in lengths for lengths in _BASE58_LENGTHS):
            return True
        if len(token) in _VERSIONED_ADDRESS_LENGTHS and token[0] in _ADDRESS_VERSIONS:
            return True
    return not any(character.isdigit() for character in token) or not any(
        character.isalpha() for character in token
    )


def _is_word_or_number(chunk: str) -> bool:
    if chunk.isdigit():
        return len(chunk) >= 2
    # Random letters run to four consonants and more far more often than words do.
    return len(chunk) >= 3 and not _VOWELS.isdisjoint(chunk) and not _CONSONANTS.search(chunk)


def _entropy(text: str) -> float:
    """Shannon entropy in bits a character."""
    counts = Counter(text)
    return -sum(count / len(text) * math.log2(count / len(text)) for count in counts.values())
