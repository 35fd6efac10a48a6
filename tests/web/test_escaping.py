"""The templates' default filter: the same text as ``html.escape`` for every string."""

from __future__ import annotations

import html

from hypothesis import given
from hypothesis import strategies as st
from markupsafe import Markup

from sleigh.webapp.escaping import text


@given(st.text(alphabet=st.sampled_from("ab &<>\"'é;#x")) | st.text())
def test_a_string_is_escaped_as_html_escape_does(value: str) -> None:
    assert text(value) == html.escape(value)


def test_every_special_character_alone_and_together() -> None:
    for char in "&<>\"'":
        assert text(char) == html.escape(char) != char
    assert text('<a href="x">Tom & Jerry\'s</a>') == (
        "&lt;a href=&quot;x&quot;&gt;Tom &amp; Jerry&#x27;s&lt;/a&gt;"
    )


def test_other_values() -> None:
    assert text(42) == "42"
    assert text(Markup("<b>trusted</b>")) == "<b>trusted</b>"
    assert text(3.5) == "3.5"
    assert text(["<x>"]) == "[&#x27;&lt;x&gt;&#x27;]"
    assert text(None) == "None"
