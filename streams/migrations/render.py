"""Rendering a migration statement for its target: a single server as written, or a cluster.

Migration files are written for a single server. With ``STREAMGAUGE_CLICKHOUSE_CLUSTER`` set,
each statement is rewritten mechanically (docs/deploy-cluster.md):

- DDL gets ``ON CLUSTER '<name>'`` (CREATE/ALTER/DROP/TRUNCATE/RENAME/EXCHANGE);
- ``ENGINE = XMergeTree(args)`` becomes ``ReplicatedXMergeTree('<path>', '{replica}', args)``;
- ``non_replicated_deduplication_window = N`` becomes ``replicated_deduplication_window = N``
  with a seconds window long enough that the count is what limits it, as on one server.

The rewrite works on tokens (string literals, quoted names and comments are never touched).
A DDL statement it does not know how to place ``ON CLUSTER`` in is refused, not guessed.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from streams.errors import UserError

# The ClickHouse default (default_replica_path): keyed by the table's UUID, so a table keeps its
# Keeper path through RENAME and EXCHANGE, and a name can be reused after a swap.
REPLICA_PATH = "/clickhouse/tables/{uuid}/{shard}"
REPLICA_NAME = "{replica}"
# One week: ClickHouse's default (3600 s) would expire tokens before the 10,000-insert window
# that docs/delivery.md promises; with this, the count is the limit, as on a single server.
DEDUPLICATION_WINDOW_SECONDS = 7 * 24 * 3600

_TOKEN = re.compile(
    r"""(?P<string>'(?:[^'\\]|\\.)*')"""
    r"""|(?P<quoted>`(?:[^`\\]|\\.)*`|"(?:[^"\\]|\\.)*")"""
    r"|(?P<comment>--[^\n]*|/\*.*?\*/)"
    r"|(?P<space>\s+)"
    r"|(?P<word>[A-Za-z_][A-Za-z0-9_$]*)"
    r"|(?P<number>\d+(?:\.\d+)?)"
    r"|(?P<other>.)",
    re.S,
)
_MERGE_TREE = re.compile(r"^(?!Replicated|Shared)([A-Za-z]*)MergeTree$")


@dataclass(frozen=True)
class Token:
    kind: str
    text: str

    @property
    def upper(self) -> str:
        return self.text.upper() if self.kind == "word" else ""


def tokenize(sql: str) -> list[Token]:
    tokens = []
    for match in _TOKEN.finditer(sql):
        kind = match.lastgroup
        assert kind is not None
        tokens.append(Token(kind, match.group()))
    return tokens


def quote_literal(value: str) -> str:
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def quote_identifier(name: str) -> str:
    return "`" + name.replace("\\", "\\\\").replace("`", "\\`") + "`"


@dataclass(frozen=True)
class Renderer:
    """Renders statements for one server (``cluster`` empty) or for a replicated cluster."""

    cluster: str = ""

    @property
    def clustered(self) -> bool:
        return bool(self.cluster)

    def render(self, statement: str) -> str:
        if not self.cluster:
            return statement
        tokens = tokenize(statement)
        if any(t.upper == "CLUSTER" for t in tokens):
            return statement  # written for a cluster already
        tokens = _replicated_engines(tokens)
        tokens = _replicated_settings(tokens)
        tokens = _on_cluster(tokens, self.cluster)
        return "".join(t.text for t in tokens)

    def on_cluster(self) -> str:
        """The clause, with a leading space, for DDL the runner writes itself."""
        return f" ON CLUSTER {quote_literal(self.cluster)}" if self.cluster else ""


def _significant(tokens: list[Token]) -> list[int]:
    return [i for i, t in enumerate(tokens) if t.kind not in ("space", "comment")]


def _on_cluster(tokens: list[Token], cluster: str) -> list[Token]:
    at = _cluster_position(tokens)
    if at is None:
        return tokens
    clause = [
        Token("space", " "),
        Token("word", "ON"),
        Token("space", " "),
        Token("word", "CLUSTER"),
        Token("space", " "),
        Token("string", quote_literal(cluster)),
    ]
    return tokens[:at] + clause + tokens[at:]


def _cluster_position(tokens: list[Token]) -> int | None:
    """Index to insert ON CLUSTER at; None for statements that are not DDL."""
    sig = _significant(tokens)
    words = [tokens[i].upper for i in sig]
    if not words:
        return None
    head = words[0]
    if head in ("RENAME", "EXCHANGE"):
        return len(tokens)  # ... ON CLUSTER goes after the whole name list
    if head not in ("CREATE", "ALTER", "DROP", "TRUNCATE", "ATTACH", "DETACH"):
        return None  # INSERT, SELECT, OPTIMIZE, SYSTEM ...: run once, replication does the rest
    position = 1
    if words[position : position + 2] == ["OR", "REPLACE"]:
        position += 2
    if position < len(words) and words[position] in ("TEMPORARY", "MATERIALIZED"):
        position += 1
    objects = ("TABLE", "VIEW", "DICTIONARY", "DATABASE", "FUNCTION")
    if position < len(words) and words[position] in objects:
        position += 1
    elif head != "TRUNCATE":
        raise UserError(
            f"cannot render this statement for a cluster: {' '.join(words[:4])} ...; "
            "write it for a single server with a supported statement, or split it."
        )
    for clause in (["IF", "NOT", "EXISTS"], ["IF", "EXISTS"]):
        if words[position : position + len(clause)] == clause:
            position += len(clause)
            break
    # The object name: name, or database.name.
    last = position
    if last + 2 < len(sig) and tokens[sig[last + 1]].text == ".":
        last += 2
    if last >= len(sig):
        raise UserError("cannot render this statement for a cluster: it names no object.")
    return sig[last] + 1


def _replicated_engines(tokens: list[Token]) -> list[Token]:
    sig = _significant(tokens)
    out = list(tokens)
    inserts: list[tuple[int, list[Token]]] = []
    for n, i in enumerate(sig[:-1]):
        if tokens[i].upper != "ENGINE":
            continue
        k = n + 1
        if tokens[sig[k]].text == "=":
            k += 1
        if k >= len(sig):
            continue
        name_at = sig[k]
        match = _MERGE_TREE.match(tokens[name_at].text)
        if tokens[name_at].kind != "word" or match is None:
            continue
        out[name_at] = Token("word", f"Replicated{tokens[name_at].text}")
        arguments = [
            Token("string", quote_literal(REPLICA_PATH)),
            Token("other", ","),
            Token("space", " "),
            Token("string", quote_literal(REPLICA_NAME)),
        ]
        has_parens = k + 1 < len(sig) and tokens[sig[k + 1]].text == "("
        if not has_parens:
            inserts.append((name_at + 1, [Token("other", "("), *arguments, Token("other", ")")]))
            continue
        open_at = sig[k + 1]
        empty = k + 2 < len(sig) and tokens[sig[k + 2]].text == ")"
        extra = [] if empty else [Token("other", ","), Token("space", " ")]
        inserts.append((open_at + 1, arguments + extra))
    for at, new in sorted(inserts, key=lambda item: item[0], reverse=True):
        out[at:at] = new
    return out


def _replicated_settings(tokens: list[Token]) -> list[Token]:
    sig = _significant(tokens)
    out = list(tokens)
    for n, i in enumerate(sig):
        if tokens[i].text.lower() != "non_replicated_deduplication_window":
            continue
        out[i] = Token("word", "replicated_deduplication_window")
        if n + 2 < len(sig) and tokens[sig[n + 1]].text == "=":
            value_at = sig[n + 2]
            seconds = f", replicated_deduplication_window_seconds = {DEDUPLICATION_WINDOW_SECONDS}"
            out[value_at] = Token(tokens[value_at].kind, tokens[value_at].text + seconds)
    return out
