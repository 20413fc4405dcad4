"""The pieces role grammars are made of: Lark literals and regexes, bounds, and the caller's argument object.

The grammars are llguidance's Lark-like language (`%llguidance {}` at the top), the one language every umi engine
enforces: llama.cpp takes it in the completion request's `grammar` field, vLLM in `structured_outputs.grammar`
(guidance backend), transformers through `llguidance` token masks. Every piece is bounded (strings, numbers,
repetitions, free text), so a constrained model cannot run on forever inside one; whitespace inside an argument
object is a bounded pattern, never llguidance's flexible whitespace (which let a model write spaces forever).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from umi.format.templates import END_OF_TURN

#: Every grammar text starts with this line: llama.cpp and vLLM read the rest as an llguidance grammar.
LLGUIDANCE_HEADER = "%llguidance {}\n"

#: What no free text may contain: the start of the end-of-turn text (a model that writes `</s>` ends its turn
#: early, before the marker). JSON strings leave out `<` itself (write `\u003c`): the same reason, and a
#: character class keeps a bounded string one cheap lexeme.
FORBIDDEN_IN_TEXT: tuple[str, ...] = (END_OF_TURN[:2],)


@dataclass(frozen=True)
class Bounds:
    """Bounds of the free pieces. The defaults accept every gold output of the released test set.

    Free text (thoughts, answers) is a bounded number of words, each word a bounded number of *tokens*: a bound
    in tokens is what guarantees the grammar ends a generation before `max_new_tokens` does (a generation under a
    grammar of at most `words × (word_tokens + whitespace)` tokens stops by itself). The bound is not written as
    a character count inside one regex on purpose: llguidance's lexer builds a state per (count, exclusion)
    pair for every vocabulary token, and `/.{0,2000}/ & ~/…Next:…/` exceeds its limits on the first token.
    """

    thought_words: int = 400
    answer_words: int = 700
    #: Tokens per word (SmolLM2's tokenizer: one released planner turn has a word of 765 tokens, a JSON blob
    #: without spaces; every other turn's words fit 64) and per word of an answer (conclusions paste URLs).
    word_tokens: int = 64
    answer_word_tokens: int = 128
    #: Whitespace between words: `[ \t\n]{1,whitespace}` (the released texts reach 36 in one place).
    whitespace: int = 16
    #: A JSON string: at most `string_escapes` escapes, and between them stretches of plain characters of at
    #: most `string` characters and `string_tokens` tokens each (a degenerate model writing one character per
    #: token cannot spend a call's whole budget inside one string). The released calls' longest string is 75
    #: tokens; one writes 10 escapes.
    string: int = 256
    string_tokens: int = 96
    string_escapes: int = 16
    digits: int = 16
    free_key: int = 64
    #: Pairs in an argument object whose API documents no parameters (α-UMi's `"input": {}` loses them).
    free_pairs: int = 8
    array_items: int = 16
    #: The bounded whitespace allowed after `{`, after `,` and before `}` (the released calls write
    #: `{\n  "k": v,\n  "k2": v\n}`, a few write `{ "k": v }` or `{\n"k": v\n}`).
    object_whitespace: int = 4

    def max_tokens(self, words: int, word_tokens: int) -> int:
        """Tokens a free text of at most `words` words can take (each whitespace run ≤ `whitespace` tokens)."""
        return words * (word_tokens + self.whitespace) + self.whitespace


DEFAULT_BOUNDS = Bounds()


_REGEX_SPECIAL = set("\\.+*?()|[]{}^$#&-~/")


def regex_escape_char(ch: str) -> str:
    return "\\" + ch if ch in _REGEX_SPECIAL else ("\\n" if ch == "\n" else ch)


_STRING_EXCLUDED = regex_escape_char(END_OF_TURN[0])


def at_most(name: str, item: str, n: int) -> list[str]:
    """Rules `name` = `item` repeated 0..n times, spelled out (`name_k: (item name_{k-1})?`): the llguidance
    inside llama.cpp (xllamacpp) does not read Lark's `~0..n` and, failing to parse, generates unconstrained."""
    if n <= 0:
        return [f'{name}: ""']
    rules = [f"{name}: {name}_{n}"]
    rules += [f"{name}_{k}: ({item} {name}_{k - 1})?" for k in range(n, 1, -1)]
    rules.append(f"{name}_1: ({item})?")
    return rules


def literal(text: str) -> str:
    """A Lark string literal (JSON escapes, which llguidance's Lark reads)."""
    return json.dumps(text, ensure_ascii=False)


def regex_escape(text: str) -> str:
    """`text` as a regex matching itself, inside Lark's `/…/` (Rust regex syntax; `/` escaped too)."""
    return "".join(regex_escape_char(ch) for ch in text)


def contains_any(pieces: tuple[str, ...]) -> str:
    """A Lark regex matching any text that contains one of `pieces` (used negated: `& ~…`)."""
    return "/(?s:.*(" + "|".join(regex_escape(p) for p in pieces) + ").*)/"


def free_text_rules(
    name: str,
    words: int,
    forbidden: tuple[str, ...],
    bounds: Bounds,
    word_tokens: int | None = None,
    *,
    lt_first_only: bool = False,
) -> list[str]:
    """`name`: whitespace-separated words (none containing any of `forbidden`), at most `words` of them, each
    at most `bounds.word_tokens` tokens. Ends with whitespace, so what follows starts a new word position, where
    the lexer can tell a marker or label from a word (a word cannot contain one).

    `lt_first_only`: a word may hold `<` only as its first character (and not before `/`), so a word ends where
    `<` follows it and a literal such as the end-of-turn `</s>` can come right after it: llguidance's lexer does
    not backtrack, and a word that could go on with `<` would take the `<` of `</s>` and then fail on `/`."""
    token = name.upper()
    in_words = tuple(p.strip() for p in forbidden)  # a word has no whitespace: `Next: ` cannot start in one
    word = "(?:<[^ \\t\\n\\/<]|[^ \\t\\n<])[^ \\t\\n<]*" if lt_first_only else "[^ \\t\\n]+"
    return [
        f"{name}: {token}_SPACE? {name}_words",
        *at_most(f"{name}_words", f"{name}_word {token}_SPACE", words),
        f"{name}_word[max_tokens={word_tokens or bounds.word_tokens}]: {token}_WORD",
        f"{token}_WORD: /{word}/ & ~{contains_any(in_words)}",
        f"{token}_SPACE: /[ \\t\\n]{{1,{bounds.whitespace}}}/",
    ]


def value_tokens(bounds: Bounds) -> str:
    """The shared value lexemes of argument objects: bounded JSON strings, integers, numbers, booleans.

    A string is `"` + stretches of plain characters (each one lexeme of at most `bounds.string_tokens` tokens)
    separated by escapes (lexemes of their own) + `"`. The token bound sits on the stretch, not on the whole
    string, because llguidance ends a lexeme that reaches its `max_tokens` wherever it is: a bounded stretch can
    end anywhere and still be valid, a bounded `"…"` lexeme would end without its closing quote, or inside an
    escape."""
    d = bounds.digits
    # `/` is escaped because it closes a Lark regex.
    # `<` only when no `/` follows (`"<order_id>"` is in the released calls; `</` would write end-of-turn text).
    plain = r'[^"\\\x00-\x1f' + _STRING_EXCLUDED + "]"
    after = r'[^"\\\x00-\x1f\/' + _STRING_EXCLUDED + "]"
    stretch = f"(?:{plain}|{_STRING_EXCLUDED}{after})"
    escape = r'\\["\\\/bfnrt]|\\u[0-9a-fA-F]{4}'
    string_body = f"(?:{stretch[3:-1]}|{escape})"
    ws = bounds.object_whitespace
    return "\n".join(
        [
            'string: "\\"" string_stretch? string_escapes "\\""',
            *at_most("string_escapes", "STRING_ESCAPE string_stretch?", bounds.string_escapes),
            f"string_stretch[max_tokens={bounds.string_tokens}]: STRING_STRETCH",
            f"STRING_STRETCH: /{stretch}{{1,{bounds.string}}}/",
            f"STRING_ESCAPE: /{escape}/",
            f'FREE_KEY: /"{string_body}{{1,{bounds.free_key}}}"/',
            f"INTEGER: /-?(?:0|[1-9][0-9]{{0,{d - 1}}})/",
            f"NUMBER: /-?(?:0|[1-9][0-9]{{0,{d - 1}}})(?:\\.[0-9]{{1,{d}}})?(?:[eE][+-]?[0-9]{{1,3}})?/",
            f"WS: /[ \\n]{{1,{ws}}}/",
            'boolean: "true" | "false"',
            'null: "null"',
            "scalar: string | NUMBER | boolean | null",
            'array: "[]" | "[" scalar array_more "]"',
            *at_most("array_more", '"," WS? scalar', bounds.array_items - 1),
            'free_object: "{}" | "{" WS? free_pair free_more WS? "}"',
            *at_most("free_more", '"," WS? free_pair', bounds.free_pairs - 1),
            'free_pair: FREE_KEY ": " (scalar | array)',
        ]
    )


@dataclass(frozen=True)
class ArgSpec:
    """One parameter as the grammar needs it: name, JSON type, enum, required."""

    name: str
    type: str = "string"
    enum: tuple[Any, ...] | None = None
    required: bool = False


def value_rule(arg: ArgSpec) -> str:
    """The grammar of one argument's value."""
    if arg.enum:
        return " | ".join(literal(json.dumps(v, ensure_ascii=False)) for v in arg.enum)
    kind = arg.type.lower()
    if kind in ("integer", "int", "number", "float", "double"):
        # ToolBench maps its NUMBER type to "integer" and the released calls pass 0.5 and 3.5 to such
        # parameters: an "integer" may be any bounded number.
        return "NUMBER"
    if kind in ("boolean", "bool"):
        return "boolean"
    if kind == "array":
        return "array"
    if kind == "object":
        return "free_object"
    return "string"


def object_rules(name: str, args: list[ArgSpec] | None, bounds: Bounds) -> list[str]:
    """Rules for one API's argument object, named `name`.

    `args is None` (the document lists no parameters, which α-UMi's documents also write for APIs whose
    parameters were lost) gives a bounded free object of scalars. Without required parameters the keys come in
    any order, each pair one of the known keys (at most as many pairs as keys). With required parameters (the
    source says so: ToolBench `api_list`, OpenAI functions, Python signatures) the keys come in the document's
    order, every required one present.
    """
    if args is None:
        return [f"{name}: free_object"]
    if not args:
        return [f'{name}: "{{}}"']
    pairs = [f"{literal(json.dumps(a.name, ensure_ascii=False) + ': ')} ({value_rule(a)})" for a in args]
    if not any(a.required for a in args):
        return [
            f'{name}: "{{}}" | "{{" WS? {name}_pair {name}_more WS? "}}"',
            f"{name}_pair: " + " | ".join(pairs),
            *at_most(f"{name}_more", f'"," WS? {name}_pair', len(args) - 1),
        ]
    # Ordered: first_i = nothing written yet from parameter i on; rest_i = something already written.
    rules = [f'{name}: "{{" WS? {name}_first0 WS? "}}"']
    n = len(args)
    for i, (a, pair) in enumerate(zip(args, pairs, strict=True)):
        nxt_first, nxt_rest = f"{name}_first{i + 1}", f"{name}_rest{i + 1}"
        first = [f"{pair} {nxt_rest}"] + ([] if a.required else [nxt_first])
        rest = [f'"," WS? {pair} {nxt_rest}'] + ([] if a.required else [nxt_rest])
        rules.append(f"{name}_first{i}: " + " | ".join(first))
        rules.append(f"{name}_rest{i}: " + " | ".join(rest))
    rules.append(f'{name}_first{n}: ""')
    rules.append(f'{name}_rest{n}: ""')
    return rules
