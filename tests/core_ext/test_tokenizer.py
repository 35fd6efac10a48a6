"""The search tokenizer: one contract, checked on the compiled module and its twin."""

from __future__ import annotations

import importlib
import os
import subprocess
import sys
from types import ModuleType
from typing import Protocol

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sleigh.core_ext import tokenizer as python_impl


class Tokenizer(Protocol):
    """What both implementations provide."""

    MAX_TOKEN: int

    def fold(self, text: str) -> str: ...

    def tokenize(self, text: str) -> list[str]: ...

    def tokenize_positions(self, text: str) -> list[tuple[str, int]]: ...


def load_native() -> ModuleType:
    """Import the compiled module; fail if it is required, else skip, when it is missing."""
    try:
        return importlib.import_module("sleigh.core_ext._tokenizer")
    except ImportError as exc:
        if os.environ.get("SLEIGH_REQUIRE_EXTENSIONS") == "1":
            pytest.fail(f"SLEIGH_REQUIRE_EXTENSIONS=1 but the compiled tokenizer is missing: {exc}")
        pytest.skip(f"compiled tokenizer not built ({exc}); run setup.py build_ext --inplace")


@pytest.fixture(params=["native", "python"])
def impl(request: pytest.FixtureRequest) -> Tokenizer:
    if request.param == "native":
        native: Tokenizer = load_native()
        return native
    return python_impl


# --- fold ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "folded"),
    [
        ("Crème Brûlée", "creme brulee"),
        ("\ufb01", "fi"),
        ("Straße", "strasse"),
        ("ÅNGSTRÖM", "angstrom"),
        ("e\u0301", "e"),
        ("İstanbul", "istanbul"),
        ("ΣΊΣΥΦΟΣ", "σισυφοσ"),
        ("①²", "12"),
        ("\U0001d400\uff21", "aa"),
        ("ガ", "カ"),
        ("Hello, World! 4.99 lego-city_x", "hello, world! 4.99 lego-city_x"),
        ("", ""),
        ("\ud800x\udfff", "\ud800x\udfff"),
        ("東京 ❤\ufe0f", "東京 ❤\ufe0f"),
    ],
)
def test_fold(impl: Tokenizer, text: str, folded: str) -> None:
    assert impl.fold(text) == folded
    assert type(impl.fold(text)) is str


def test_fold_keeps_a_long_mostly_ascii_text_aligned(impl: Tokenizer) -> None:
    text = "Café au lait — Crème Brûlée. " * 50 + "x" * 1000
    assert impl.fold(text) == ("cafe au lait — creme brulee. " * 50 + "x" * 1000)


# --- tokenize -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "tokens"),
    [
        ("Lego City Fire Truck", ["lego", "city", "fire", "truck"]),
        ("3D puzzle", ["3d", "puzzle"]),
        ("lego-city", ["lego", "city"]),
        ("4.99", ["4", "99"]),
        ("snake_case_name", ["snake", "case", "name"]),
        ("Barbie's Dreamhouse", ["barbies", "dreamhouse"]),
        ("don\u2019t stop", ["dont", "stop"]),
        ("'quoted' rock 'n' roll", ["quoted", "rock", "n", "roll"]),
        ("a''b a' 'b 7's", ["a", "b", "a", "b", "7s"]),
        ("Crème Brûlée", ["creme", "brulee"]),
        ("東京 Ölüdeniz", ["東京", "oludeniz"]),
        ("東京Tokyo", ["東京tokyo"]),
        ("Москва́ Αθήνα", ["москва", "αθηνα"]),
        ("\ufb01sh Straße", ["fish", "strasse"]),
        ("½", ["1", "2"]),
        ("I \u2764\ufe0f toys \U0001f600\U0001f3fd!", ["i", "toys"]),
        ("\U0001f468\u200d\U0001f469\u200d\U0001f467", []),
        ("हिन्दी", ["हिनदी"]),
        ("\u093e\u093e", []),
        ("", []),
        ("  \t\n", []),
        ("!?.,;:-_()[]{}<>/\\|@#$%^&*~`\"'\u2019", []),
        ("a\x00b", ["a", "b"]),
        ("\ud800", []),
        ("a\ud800b\udfffc", ["a", "b", "c"]),
    ],
)
def test_tokenize(impl: Tokenizer, text: str, tokens: list[str]) -> None:
    assert impl.tokenize(text) == tokens
    assert all(type(token) is str for token in impl.tokenize(text))


def test_long_tokens_are_truncated(impl: Tokenizer) -> None:
    assert impl.MAX_TOKEN == 64
    assert impl.tokenize("a" * 64) == ["a" * 64]
    assert impl.tokenize("B" * 65 + " c") == ["b" * 64, "c"]
    assert impl.tokenize("é" * 100) == ["e" * 64]
    assert impl.tokenize("東" * 100) == ["東" * 64]
    assert impl.tokenize("x'" * 40 + "y") == ["x" * 40 + "y"]


def test_very_long_input(impl: Tokenizer) -> None:
    words = [f"w{i}" for i in range(100_000)]
    text = " ".join(words)
    assert impl.tokenize(text) == words
    assert impl.tokenize(text + " é") == [*words, "e"]


def test_tokenize_positions(impl: Tokenizer) -> None:
    assert impl.tokenize_positions("The LEGO-city, the Café!") == [
        ("the", 0),
        ("lego", 1),
        ("city", 2),
        ("the", 3),
        ("cafe", 4),
    ]
    assert impl.tokenize_positions("") == []
    assert impl.tokenize_positions("…") == []


def test_str_subclass_is_accepted(impl: Tokenizer) -> None:
    class Text(str):
        pass

    assert impl.tokenize(Text("Crème Brûlée")) == ["creme", "brulee"]
    assert impl.tokenize(Text("ascii only")) == ["ascii", "only"]


@pytest.mark.parametrize("value", [None, b"bytes", 42, ["a"]])
@pytest.mark.parametrize("name", ["fold", "tokenize", "tokenize_positions"])
def test_non_str_raises_type_error(impl: Tokenizer, name: str, value: object) -> None:
    with pytest.raises(TypeError):
        getattr(impl, name)(value)


# --- parity and properties ----------------------------------------------------------------

# Everything, surrogates included: hypothesis leaves out category Cs by default.
any_text = st.text(st.characters(exclude_categories=()), max_size=80)
tricky = st.sampled_from(
    [
        "é",
        "e\u0301",
        "'",
        "\u2019",
        "ß",
        "\ufb01",
        "İ",
        "Σ",
        "東京",
        "\U0001f600",
        "\ufe0f",
        "\u093e",
        "_",
        "-",
        ".",
        "\U0001d400",
        "①",
        "\ud800",
        "\u0345",
        "\u1e9e",
        "\ufdfa",
    ]
)
ascii_words = st.text(st.characters(min_codepoint=0x20, max_codepoint=0x7E), max_size=40)
# Mostly ASCII with a few special characters: the compiled module's run-by-run folding.
mostly_ascii = st.lists(st.one_of(ascii_words, tricky), max_size=12).map("".join)


def check_parity(native: Tokenizer, text: str) -> None:
    assert native.fold(text) == python_impl.fold(text)
    assert native.tokenize(text) == python_impl.tokenize(text)
    assert native.tokenize_positions(text) == python_impl.tokenize_positions(text)


@settings(max_examples=500, deadline=None)
@given(text=any_text)
def test_parity_on_any_unicode(text: str) -> None:
    check_parity(load_native(), text)


@settings(max_examples=500, deadline=None)
@given(text=mostly_ascii)
def test_parity_on_mostly_ascii(text: str) -> None:
    check_parity(load_native(), text)


@settings(max_examples=300, deadline=None)
@given(text=st.one_of(any_text, mostly_ascii))
def test_token_properties(text: str) -> None:
    tokens = python_impl.tokenize(text)
    folded = python_impl.fold(text)
    assert python_impl.fold(folded) == folded
    for token in tokens:
        assert 0 < len(token) <= python_impl.MAX_TOKEN
        assert python_impl.fold(token) == token
    assert python_impl.tokenize(" ".join(tokens)) == tokens


# --- choosing the implementation ----------------------------------------------------------


def native_flag(no_extensions: str | None) -> str:
    env = {k: v for k, v in os.environ.items() if k != "SLEIGH_NO_EXTENSIONS"}
    if no_extensions is not None:
        env["SLEIGH_NO_EXTENSIONS"] = no_extensions
    result = subprocess.run(
        [sys.executable, "-c", "import sleigh.core_ext as c; print(c.NATIVE)"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return result.stdout.strip()


@pytest.mark.parametrize(
    ("value", "expected"),
    [("1", "False"), ("yes", "False"), (None, "True"), ("", "True"), ("0", "True")],
)
def test_no_extensions_switch(value: str | None, expected: str) -> None:
    load_native()
    assert native_flag(value) == expected


def test_package_exposes_the_chosen_implementation() -> None:
    import sleigh.core_ext as chosen

    source = load_native() if chosen.NATIVE else python_impl
    assert chosen.tokenize is source.tokenize
    assert chosen.tokenize_positions is source.tokenize_positions
    assert chosen.fold is source.fold
    assert chosen.MAX_TOKEN == 64
