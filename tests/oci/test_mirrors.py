"""registries.conf routing rules: prefix matching, location rewrites, mirrors, pull-from-mirror, blocked."""

from __future__ import annotations

from pathlib import Path

import pytest

from xplane.oci.errors import BlockedRegistryError, ConfigError
from xplane.oci.mirrors import (
    Endpoint,
    check_not_blocked,
    find_registry,
    match_text,
    prefix_match,
    pull_sources,
    push_endpoint,
    registries_of,
)
from xplane.oci.reference import Reference
from xplane.oci.registriesconf import ConfMirror, ConfRegistry, read_registries_conf
from xplane.oci.settings import RegistryConfig

DIGEST = "sha256:" + "a" * 64


def conf(tmp_path: Path, text: str, name: str = "registries.conf") -> tuple[Path, tuple[ConfRegistry, ...]]:
    path = tmp_path / name
    path.write_text(text)
    return path, read_registries_conf(path)


def pulls(ref: str, registries: tuple[ConfRegistry, ...]) -> list[str]:
    return [str(e.reference) for e in pull_sources(Reference.parse(ref), registries)]


# -- matching ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "prefix", "expected"),
    [
        ("example.com/foo/bar:v1", "example.com", 11),
        ("example.com/foo/bar:v1", "example.com/foo", 15),
        ("example.com/foo/bar:v1", "example.com/foo/bar", 19),
        ("example.com/foo/bar:v1", "example.com/foo/bar:v1", 22),
        (f"example.com/foo/bar@{DIGEST}", "example.com/foo/bar", 19),
        ("example.com/foobar/x:v1", "example.com/foo", None),  # whole path components only
        ("example.com/foo/bar:v1", "example.com/foo/bar:v2", None),
        ("example.com:5000/foo:v1", "example.com", None),  # a bare host does not match host:port
        ("example.com:5000/foo:v1", "example.com:5000", 16),
        ("example.co/foo:v1", "example.com", None),
        ("a.example.com/foo:v1", "*.example.com", 13),
        ("a.b.example.com/foo:v1", "*.example.com", 15),
        ("a.example.com:5000/foo:v1", "*.example.com", 13),
        ("example.com/foo:v1", "*.example.com", None),  # the domain itself is not a subdomain
        ("a.example.com.evil/foo:v1", "*.example.com", None),
        ("docker.io/library/alpine:latest", "index.docker.io/library", 17),
    ],
)
def test_prefix_match(text: str, prefix: str, expected: int | None) -> None:
    assert prefix_match(text, prefix) == expected


def test_match_text_names_docker_hub_docker_io() -> None:
    assert match_text(Reference.parse("alpine")) == "docker.io/library/alpine:latest"
    assert match_text(Reference.parse(f"r.example/x:v1@{DIGEST}")) == f"r.example/x:v1@{DIGEST}"
    assert match_text(Reference.parse(f"r.example/x@{DIGEST}")) == f"r.example/x@{DIGEST}"


def test_longest_prefix_wins(tmp_path: Path) -> None:
    _, regs = conf(
        tmp_path,
        """\
[[registry]]
location = "example.com"

[[registry]]
prefix = "example.com/team"
location = "team.internal"

[[registry]]
prefix = "*.example.com"
location = "wild.internal"
""",
    )
    found = find_registry(regs, "example.com/team/app:v1")
    assert found is not None and found[0].prefix == "example.com/team"
    found = find_registry(regs, "example.com/other/app:v1")
    assert found is not None and found[0].prefix == "example.com"
    found = find_registry(regs, "x.example.com/app:v1")
    assert found is not None and found[0].prefix == "*.example.com"
    assert find_registry(regs, "elsewhere.example/app:v1") is None


# -- pull candidates --------------------------------------------------------------------------------

MAN_PAGE = """\
[[registry]]
prefix = "example.com/foo"
location = "internal-registry-for-example.net/bar"

[[registry.mirror]]
location = "example-mirror-0.local/mirror-for-foo"

[[registry.mirror]]
location = "example-mirror-1.local/mirrors/foo"
insecure = true
"""


def test_location_rewrite_and_mirrors_in_order(tmp_path: Path) -> None:
    path, regs = conf(tmp_path, MAN_PAGE)
    assert pulls("example.com/foo/image:latest", regs) == [
        "example-mirror-0.local/mirror-for-foo/image:latest",
        "example-mirror-1.local/mirrors/foo/image:latest",
        "internal-registry-for-example.net/bar/image:latest",
    ]
    sources = pull_sources(Reference.parse(f"example.com/foo/a/b@{DIGEST}"), regs)
    assert [str(s.reference) for s in sources][-1] == f"internal-registry-for-example.net/bar/a/b@{DIGEST}"
    assert [s.mirror for s in sources] == [True, True, False]
    assert sources[0].source == f"{path}:5 ([[registry.mirror]] example-mirror-0.local/mirror-for-foo)"
    assert sources[2].source == f"{path}:1 ([[registry]] internal-registry-for-example.net/bar)"
    # pushes go to the remapped primary, never to a mirror
    push = push_endpoint(Reference.parse("example.com/foo/image:v2"), regs)
    assert str(push.reference) == "internal-registry-for-example.net/bar/image:v2" and not push.mirror
    # no entry: the reference itself, and nothing else
    ref = Reference.parse("other.example/x:v1")
    assert pull_sources(ref, regs) == (Endpoint(ref),) and push_endpoint(ref, regs) == Endpoint(ref)


@pytest.mark.parametrize(
    ("settings", "tag_pull", "digest_pull"),
    [
        ('[[registry.mirror]]\nlocation = "m.local"\n', ["m.local", "r.example"], ["m.local", "r.example"]),
        (
            '[[registry.mirror]]\nlocation = "m.local"\npull-from-mirror = "all"\n',
            ["m.local", "r.example"],
            ["m.local", "r.example"],
        ),
        (
            '[[registry.mirror]]\nlocation = "m.local"\npull-from-mirror = "digest-only"\n',
            ["r.example"],
            ["m.local", "r.example"],
        ),
        (
            '[[registry.mirror]]\nlocation = "m.local"\npull-from-mirror = "tag-only"\n',
            ["m.local", "r.example"],
            ["r.example"],
        ),
        (
            'mirror-by-digest-only = true\n[[registry.mirror]]\nlocation = "m.local"\n'
            '[[registry.mirror]]\nlocation = "n.local"\n',
            ["r.example"],
            ["m.local", "n.local", "r.example"],
        ),
    ],
)
def test_pull_from_mirror(tmp_path: Path, settings: str, tag_pull: list[str], digest_pull: list[str]) -> None:
    _, regs = conf(tmp_path, f'[[registry]]\nlocation = "r.example"\n{settings}')
    assert [r.split("/")[0] for r in pulls("r.example/app:v1", regs)] == tag_pull
    assert [r.split("/")[0] for r in pulls(f"r.example/app:v1@{DIGEST}", regs)] == digest_pull


def test_wildcard_prefix(tmp_path: Path) -> None:
    _, regs = conf(
        tmp_path,
        """\
[[registry]]
prefix = "*.corp.example"
[[registry.mirror]]
location = "mirror.local:5000/corp"
""",
    )
    # the mirror gets everything after the matched host; without a location the primary is the reference
    assert pulls("a.corp.example/team/app:v1", regs) == [
        "mirror.local:5000/corp/team/app:v1",
        "a.corp.example/team/app:v1",
    ]
    assert pulls("corp.example/team/app:v1", regs) == ["corp.example/team/app:v1"]


def test_docker_hub_and_localhost_locations(tmp_path: Path) -> None:
    _, regs = conf(
        tmp_path,
        """\
[[registry]]
prefix = "docker.io/library"
location = "localhost/hub"
[[registry.mirror]]
location = "mirror.gcr.io/library"
""",
    )
    sources = pull_sources(Reference.parse("alpine"), regs)
    assert [(s.reference.registry, s.reference.repository) for s in sources] == [
        ("mirror.gcr.io", "library/alpine"),
        ("localhost", "hub/alpine"),
    ]
    assert pulls("docker.io/crossplane/crossplane:v1", regs) == ["index.docker.io/crossplane/crossplane:v1"]


def test_rewrite_to_an_invalid_reference_names_the_entry(tmp_path: Path) -> None:
    path = tmp_path / "registries.conf"
    regs = (ConfRegistry(prefix="r.example/app", location="r.example/UPPER", source=f"{path}:1"),)
    with pytest.raises(ConfigError, match=rf"^{path}:1: the rewritten reference 'r.example/UPPER/x:v1'"):
        pull_sources(Reference.parse("r.example/app/x:v1"), regs)


# -- blocked ----------------------------------------------------------------------------------------


def test_blocked_refuses_pull_push_and_contact_with_file_and_line(tmp_path: Path) -> None:
    path, regs = conf(
        tmp_path,
        """\
[[registry]]
location = "bad.example"
insecure = false
blocked = true
[[registry.mirror]]
location = "mirror.local"

[[registry]]
location = "ok.example/blocked-team"
blocked = true
""",
    )
    for call in (pull_sources, push_endpoint):
        with pytest.raises(BlockedRegistryError) as info:
            call(Reference.parse("bad.example/app:v1"), regs)
        assert f"{path}:4" in str(info.value) and "blocked = true" in str(info.value)
        assert info.value.exit_code == 4 and info.value.registry == "bad.example"
    with pytest.raises(BlockedRegistryError, match=f"refusing to contact bad.example/app: .*{path}:4"):
        check_not_blocked(regs, "bad.example", "app")
    # a prefix with a path blocks that namespace only
    with pytest.raises(BlockedRegistryError, match=f"{path}:10"):
        pull_sources(Reference.parse("ok.example/blocked-team/app:v1"), regs)
    assert pulls("ok.example/other/app:v1", regs) == ["ok.example/other/app:v1"]
    check_not_blocked(regs, "ok.example", "other/app")
    check_not_blocked(regs, "ok.example")  # the host itself is not blocked


def test_blocked_v1_and_drop_in_override(tmp_path: Path) -> None:
    main = tmp_path / "registries.conf"
    main.write_text(
        '[registries.search]\nregistries = []\n[registries.block]\nregistries = ["bad.example"]\n'
    )
    with pytest.raises(BlockedRegistryError, match=f"{main}:3"):
        pull_sources(Reference.parse("bad.example/x:v1"), read_registries_conf(main))
    drop_in = tmp_path / "50-unblock.conf"
    drop_in.write_text('[[registry]]\nlocation = "bad.example"\n')
    assert pulls("bad.example/x:v1", read_registries_conf(main, [drop_in])) == ["bad.example/x:v1"]


# -- parsing ----------------------------------------------------------------------------------------


def test_parsed_model(tmp_path: Path) -> None:
    path, regs = conf(
        tmp_path, MAN_PAGE.replace("insecure = true\n", 'insecure = true\npull-from-mirror = "tag-only"\n')
    )
    (reg,) = regs
    assert (reg.prefix, reg.location, reg.pattern, reg.blocked, reg.mirror_by_digest_only) == (
        "example.com/foo",
        "internal-registry-for-example.net/bar",
        "internal-registry-for-example.net/bar",
        False,
        False,
    )
    assert reg.mirrors == (
        ConfMirror("example-mirror-0.local/mirror-for-foo", False, "all", reg.mirrors[0].source),
        ConfMirror("example-mirror-1.local/mirrors/foo", True, "tag-only", reg.mirrors[1].source),
    )
    assert reg.blocked_source == f"{path}:1"  # no `blocked` key: the table's line


@pytest.mark.parametrize(
    ("text", "line", "message"),
    [
        (
            '[[registry]]\nlocation = "r.example"\n[[registry.mirror]]\nlocation = "m"\npull-from-mirror = "some"\n',
            5,
            "pull-from-mirror must be one of all, digest-only, tag-only, not 'some'",
        ),
        (
            '[[registry]]\nlocation = "r.example"\npull-from-mirror = "all"\n',
            3,
            "pull-from-mirror belongs in a \\[\\[registry.mirror\\]\\]",
        ),
        (
            '[[registry]]\nlocation = "r.example"\nmirror-by-digest-only = true\n'
            '[[registry.mirror]]\nlocation = "m"\npull-from-mirror = "tag-only"\n',
            6,
            "cannot be combined with mirror-by-digest-only",
        ),
        (
            '[[registry]]\nlocation = "r.example"\nmirror-by-digest-only = "yes"\n',
            3,
            "mirror-by-digest-only must be true or false",
        ),
    ],
)
def test_malformed_mirror_settings(tmp_path: Path, text: str, line: int, message: str) -> None:
    path = tmp_path / "r.conf"
    path.write_text(text)
    with pytest.raises(ConfigError, match=rf"^{path}:{line}: .*{message}"):
        read_registries_conf(path)


def test_registry_config_carries_the_entries(tmp_path: Path) -> None:
    path, _ = conf(tmp_path, MAN_PAGE)
    env = {"CONTAINERS_REGISTRIES_CONF": str(path), "XDG_CONFIG_HOME": str(tmp_path / "cfg")}
    cfg = RegistryConfig.load(env=env, system_root=tmp_path)
    assert [r.prefix for r in registries_of(cfg)] == ["example.com/foo"]
    assert cfg.for_registry("example-mirror-1.local").http_fallback  # a mirror's own insecure flag
    assert not cfg.for_registry("example-mirror-0.local").http_fallback
    assert registries_of(object()) == ()  # a stand-in config has no registries.conf
