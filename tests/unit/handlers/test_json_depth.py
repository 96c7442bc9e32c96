"""The nesting-depth bound every adapter applies before decoding JSON (``handlers._common``).

``check_json_depth`` works on the raw bytes without decoding them; it must agree exactly
with the depth of the decoded document, whatever the strings inside hold (brackets, quotes,
backslashes), and ``decode_json`` must refuse a too-deep document with ``PayloadError``
instead of letting the decoder's ``RecursionError`` out.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from handlers._common import MAX_JSON_DEPTH, check_json_depth, decode_json
from handlers.base import PayloadError


def depth_of(value: Any) -> int:
    """Reference: containers on the deepest path of a decoded document."""
    if isinstance(value, dict):
        return 1 + max((depth_of(v) for v in value.values()), default=0)
    if isinstance(value, list):
        return 1 + max((depth_of(v) for v in value), default=0)
    return 0


def accepts(document: bytes | str, limit: int) -> bool:
    try:
        check_json_depth(document, limit=limit)
    except PayloadError:
        return False
    return True


#: strings full of what a byte scanner could mistake for structure
tricky_text = st.text(alphabet='[]{}"\\ ,:abc\u00e9\u2028', max_size=12)
documents = st.recursive(
    st.none() | st.booleans() | st.integers() | tricky_text,
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(tricky_text, children, max_size=4)
    ),
    max_leaves=40,
)


@settings(max_examples=300, deadline=None)
@given(document=documents, limit=st.integers(0, 8), ascii_only=st.booleans())
def test_the_byte_scan_agrees_with_the_decoded_depth(
    document: Any, limit: int, ascii_only: bool
) -> None:
    """For any document, with brackets, quotes and backslashes inside its strings and
    keys, the check refuses it exactly when its decoded depth exceeds the limit (bytes and
    text alike)."""
    text = json.dumps(document, ensure_ascii=ascii_only)
    expected = depth_of(document) <= limit
    assert accepts(text.encode(), limit) is expected
    assert accepts(text, limit) is expected


@pytest.mark.parametrize(
    ("document", "depth"),
    [
        ('{"k":[{"k":[1]}]}', 4),  # alternating kinds: one level per bracket
        ('[[], [[]], {"a": {}}]', 3),
        ('["]]]]]]]]", "[[[[[[[[", "\\\\", "\\"[[["]', 1),
        ('{"a\\\\": "[", "b": "\\\\\\"{{{{{{"}', 1),
        ('[[[[["\\u005b\\u005b"]]]]]', 5),
    ],
)
def test_strings_and_escapes_do_not_count_as_nesting(document: str, depth: int) -> None:
    """Brackets inside strings (also after escaped quotes and backslashes) are text."""
    assert depth_of(json.loads(document)) == depth
    assert accepts(document, depth)
    assert not accepts(document, depth - 1)


@pytest.mark.parametrize("kind", ["[", '{"k":'])
def test_decode_json_refuses_deep_documents_with_payload_error(kind: str) -> None:
    """One level over MAX_JSON_DEPTH is a PayloadError naming the field, and so is a
    nesting deep enough to exhaust the decoder's recursion (no RecursionError escapes)."""
    close = "]" if kind == "[" else "}"
    at_limit = kind * MAX_JSON_DEPTH + "1" + close * MAX_JSON_DEPTH
    assert depth_of(decode_json(at_limit.encode())) == MAX_JSON_DEPTH
    for depth in (MAX_JSON_DEPTH + 1, 100_000):
        document = kind * depth + "1" + close * depth
        with pytest.raises(PayloadError, match="deeper than") as info:
            decode_json(document.encode())
        assert info.value.field == "body"
        with pytest.raises(PayloadError) as info:
            decode_json(document, "Message")
        assert info.value.field == "Message"


@pytest.mark.parametrize(
    "document",
    [b"[" * 100_000, b"]" * 10 + b"[" * 100_000, b"[{" * 50_000, b'"' + b"[" * 100_000],
)
def test_unbalanced_brackets_are_invalid_json_not_a_crash(document: bytes) -> None:
    """Unbalanced documents are left to the decoder, which refuses them (a RecursionError
    from a very deep unbalanced prefix is caught too)."""
    with pytest.raises(PayloadError):
        decode_json(document)
