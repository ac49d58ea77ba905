"""Reference parsing (ggcr rules) and Crossplane's name helpers (pkg/xpkg/name.go)."""

from __future__ import annotations

import contextlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from xplane.oci.errors import InvalidReferenceError
from xplane.oci.reference import (
    Digest,
    Reference,
    friendly_id,
    package_source,
    to_dns_label,
)

D = "sha256:" + "ab" * 32

PARSE_CASES = [
    # input, registry, repository, tag, digest, canonical str
    ("ubuntu", "index.docker.io", "library/ubuntu", None, None, "index.docker.io/library/ubuntu:latest"),
    (
        "ubuntu:22.04",
        "index.docker.io",
        "library/ubuntu",
        "22.04",
        None,
        "index.docker.io/library/ubuntu:22.04",
    ),
    ("docker.io/x/y:1", "index.docker.io", "x/y", "1", None, "index.docker.io/x/y:1"),
    ("index.docker.io/x/y", "index.docker.io", "x/y", None, None, "index.docker.io/x/y:latest"),
    ("crossplane/crossplane", "index.docker.io", "crossplane/crossplane", None, None, None),
    ("localhost:5000/a/b", "localhost:5000", "a/b", None, None, "localhost:5000/a/b:latest"),
    ("localhost/a", "index.docker.io", "localhost/a", None, None, None),  # ggcr: needs '.' or ':'
    ("127.0.0.1:15000/test/pkg:v0.1.0", "127.0.0.1:15000", "test/pkg", "v0.1.0", None, None),
    (f"reg.io/a@{D}", "reg.io", "a", None, D, f"reg.io/a@{D}"),
    (f"reg.io/a:v1@{D}", "reg.io", "a", "v1", D, f"reg.io/a:v1@{D}"),
    (
        "xpkg.crossplane.io/crossplane-contrib/provider-nop:v0.2.1",
        "xpkg.crossplane.io",
        "crossplane-contrib/provider-nop",
        "v0.2.1",
        None,
        None,
    ),
    ("[::1]:5000/a/b:t", "[::1]:5000", "a/b", "t", None, None),
    ("reg.io/a__b/c-d.e_f:T_1.x-y", "reg.io", "a__b/c-d.e_f", "T_1.x-y", None, None),
    ("reg.io:443/deep/path/of/repos:1", "reg.io:443", "deep/path/of/repos", "1", None, None),
]


@pytest.mark.parametrize(("text", "registry", "repository", "tag", "digest", "canonical"), PARSE_CASES)
def test_parse(
    text: str, registry: str, repository: str, tag: str | None, digest: str | None, canonical: str | None
) -> None:
    ref = Reference.parse(text)
    assert (ref.registry, ref.repository, ref.tag, ref.digest) == (registry, repository, tag, digest)
    assert ref.original == text
    if canonical:
        assert str(ref) == canonical


BAD = [
    "",
    " ",
    "reg.io/A/b",
    "reg.io/a:",
    "reg.io/a:-x",
    "reg.io/a@sha256:abc",
    "reg.io/a@sha256:" + "A" * 64,
    "reg.io//a",
    "reg.io/a/",
    "reg.io/a b",
    "reg.io/a@" + D + "@" + D,
    "reg.io:99999/a",
    "reg.io/a:" + "t" * 129,
    "reg.io/-a",
    "reg.io/a--",
    "UPPER",
    "reg.io/a:tag:more/x",
    "bad_host.io:1/a",
]


@pytest.mark.parametrize("text", BAD)
def test_parse_rejects(text: str) -> None:
    with pytest.raises(InvalidReferenceError):
        Reference.parse(text)


def test_error_message_names_the_reference() -> None:
    with pytest.raises(InvalidReferenceError, match="reg.io/A/b"):
        Reference.parse("reg.io/A/b")


@pytest.mark.parametrize(
    ("text", "why"),
    [("ubuntu:1", "registry"), ("reg.io/a", "tag or digest"), ("docker.io/ubuntu:1", "library")],
)
def test_strict(text: str, why: str) -> None:
    with pytest.raises(InvalidReferenceError, match=why):
        Reference.parse(text, strict=True)
    assert Reference.parse("reg.io/a/b:v1", strict=True).tag == "v1"


def test_identifier_and_default_tag() -> None:
    assert Reference.parse("reg.io/a").identifier == "latest"
    assert Reference.parse("reg.io/a").effective_tag == "latest"
    assert Reference.parse(f"reg.io/a@{D}").effective_tag is None
    assert Reference.parse(f"reg.io/a@{D}").identifier == D
    assert Reference.parse("reg.io/a:v1").with_digest(D).original == f"reg.io/a@{D}"


def test_digest() -> None:
    assert str(Digest.parse(D)) == D
    assert Digest.is_digest(D)
    assert not Digest.is_digest("v1.2.3")
    assert not Digest.is_digest("sha256:" + "a" * 63)


# Worked examples from packages.md §1.6 (computed with upstream's algorithm).
NAME_CASES = [
    (to_dns_label, ("Upbound/Provider_AWS",), "pbound-rovider"),
    (
        to_dns_label,
        ("xpkg.crossplane.io/crossplane-contrib/provider-nop",),
        "xpkg-crossplane-io-crossplane-contrib-provider-nop",
    ),
    (to_dns_label, ("-a-",), "a"),
    (to_dns_label, ("/a",), "a"),
    (to_dns_label, ("a/",), "a"),
    (to_dns_label, ("a//b",), "a--b"),
    (to_dns_label, ("",), ""),
    (to_dns_label, ("ÄÖÜ",), ""),
    (to_dns_label, ("a" * 70,), "a" * 63),
    (to_dns_label, ("a" * 62 + "/b",), "a" * 62),  # separator at byte 62 is dropped, then stop
    (to_dns_label, ("x" + "é" * 40 + "abc",), "xabc"),  # byte 62 is inside a rune: no stop there
    (to_dns_label, ("é" * 40 + "abc",), ""),  # byte 62 starts a rune: stop
    (
        friendly_id,
        ("crossplane-contrib-provider-nop", "ecc25c121431dfc7058754427f97c034"),
        "crossplane-contrib-provider-nop-ecc25c121431",
    ),
    (
        friendly_id,
        ("xpkg.crossplane.io/crossplane-contrib/provider-nop", "sha256:ecc25c12"),
        "xpkg-crossplane-io-crossplane-contrib-provider-nop-sha256-ecc25",
    ),
    (friendly_id, ("x" * 60, "0123456789abcdef"), "x" * 50 + "-0123456789ab"),
]


@pytest.mark.parametrize(("fn", "args", "want"), NAME_CASES)
def test_name_helpers(fn, args, want) -> None:  # type: ignore[no-untyped-def]
    assert fn(*args) == want


@pytest.mark.parametrize(
    ("text", "want"),
    [
        ("reg.io/x:v1", "reg.io/x"),
        (f"reg.io/x@{D}", "reg.io/x"),
        (f"reg.io/x:v1@{D}", "reg.io/x:v1"),  # upstream keeps the tag
        ("reg.io/x", "reg.io/x"),
        ("ubuntu", "ubuntu"),
    ],
)
def test_package_source(text: str, want: str) -> None:
    assert package_source(text) == want


def _go_to_dns_label(s: str) -> str:
    """A second, deliberately literal transcription of upstream's loop, used as the oracle."""
    data = s.encode()
    out = []
    i = 0
    while i < len(data):
        b = data[i]
        if chr(b) in "abcdefghijklmnopqrstuvwxyz0123456789":
            out.append(chr(b))
        if chr(b) in ".:/-" and i not in (0, 62, len(data) - 1):
            out.append("-")
        if i == 62:
            break
        i += len(chr(b).encode()) if b < 0x80 else len(data[i:].decode(errors="ignore")[:1].encode()) or 1
    return "".join(out).strip("-")


label_text = st.text(alphabet=st.sampled_from("abcXYZ019.-/:_@é"), max_size=90)


@given(label_text)
def test_dns_label_matches_oracle(s: str) -> None:
    assert to_dns_label(s) == _go_to_dns_label(s)


@given(label_text)
def test_dns_label_is_a_label(s: str) -> None:
    label = to_dns_label(s)
    assert not label.startswith("-") and not label.endswith("-")
    assert set(label) <= set("abcdefghijklmnopqrstuvwxyz0123456789-")


component = st.from_regex(r"\A[a-z0-9]{1,6}([._-][a-z0-9]{1,6}){0,2}\Z")
tag = st.from_regex(r"\A[A-Za-z0-9_][A-Za-z0-9_.-]{0,20}\Z")
host = st.sampled_from(["reg.io", "127.0.0.1:5000", "localhost:8443", "a.b.c:1"])


@given(host, st.lists(component, min_size=1, max_size=4), st.one_of(st.none(), tag))
def test_round_trip(h: str, comps: list[str], t: str | None) -> None:
    text = f"{h}/{'/'.join(comps)}" + (f":{t}" if t else "")
    ref = Reference.parse(text)
    assert ref.registry == h
    assert ref.repository == "/".join(comps)
    assert ref.tag == t
    again = Reference.parse(str(ref))
    assert (again.registry, again.repository, again.identifier) == (
        ref.registry,
        ref.repository,
        ref.identifier,
    )


@given(st.text(max_size=40))
def test_parse_never_crashes(s: str) -> None:
    with contextlib.suppress(InvalidReferenceError):
        Reference.parse(s)
