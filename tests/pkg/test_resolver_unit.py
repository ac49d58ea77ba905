"""The whole-graph resolver over in-memory candidate data (its input is data, not a registry)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import pytest

from xplane.pkg.resolver import GraphInput, Installed, Need, ResolutionError, find_cycle, resolve

R = "reg.example.com/acme/"


class Memory:
    """Versions and their ``dependsOn`` per source."""

    def __init__(self, graph: Mapping[str, Mapping[str, Sequence[Need]]]) -> None:
        self.graph = graph
        self.fetched: list[tuple[str, str]] = []

    def versions(self, source: str) -> Sequence[str]:
        if source not in self.graph:
            raise ResolutionError(f"cannot list versions of {source}: not found", source=source)
        return list(self.graph[source])

    def needs(self, source: str, version: str) -> Sequence[Need]:
        self.fetched.append((source, version))
        return self.graph[source][version]


def cfg(name: str, *needs: Need, version: str = "v1.0.0") -> Installed:
    return Installed(R + name, version, name, needs)


def need(name: str, c: str, kind: str = "Provider") -> Need:
    return Need(R + name, c, kind)


PROVIDER_X = {"v1.4.0": (), "v1.5.2": (), "v2.0.1": ()}


def test_every_dependent_counts_and_the_highest_common_version_wins() -> None:
    data = Memory({R + "provider-x": PROVIDER_X})
    a = cfg("configuration-a", need("provider-x", ">=v1.0.0"))
    b = cfg("configuration-b", need("provider-x", "<v2.0.0"))
    plan = resolve(GraphInput([a, b], data))
    assert plan.versions[R + "provider-x"] == "v1.5.2"  # upstream's greedy pick from a alone: v2.0.1
    (step,) = plan.changes
    assert step.action == "install" and step.name == "provider-x"
    assert (
        "configuration-a requires >=v1.0.0" in step.reason
        and "configuration-b requires <v2.0.0" in step.reason
    )
    assert plan.rounds >= 1


def test_unsatisfiable_pair_names_both() -> None:
    data = Memory({R + "provider-x": PROVIDER_X})
    a = cfg("configuration-a", need("provider-x", ">=v2.0.0"))
    b = cfg("configuration-b", need("provider-x", "<v2.0.0"))
    with pytest.raises(ResolutionError) as e:
        resolve(GraphInput([a, b], data))
    assert e.value.message == (
        "provider-x: configuration-a requires >=v2.0.0, configuration-b requires <v2.0.0; "
        "no version satisfies both (available: v1.4.0, v1.5.2, v2.0.1)"
    )


def test_transitive_backtracking() -> None:
    # the newest function needs a provider-x no one else accepts: back off to function v1.
    data = Memory(
        {
            R + "function-f": {
                "v1.0.0": (need("provider-x", "<v2.0.0"),),
                "v2.0.0": (need("provider-x", ">=v2.0.0"),),
            },
            R + "provider-x": PROVIDER_X,
        }
    )
    a = cfg("configuration-a", need("function-f", ">=v1.0.0", "Function"), need("provider-x", "<v2.0.0"))
    plan = resolve(GraphInput([a], data))
    assert plan.versions[R + "function-f"] == "v1.0.0"
    assert plan.versions[R + "provider-x"] == "v1.5.2"


def test_digest_pins_are_exact() -> None:
    d = "sha256:" + "a" * 64
    data = Memory({R + "provider-x": {**PROVIDER_X, d: ()}})
    plan = resolve(GraphInput([cfg("a", need("provider-x", d))], data))
    assert plan.versions[R + "provider-x"] == d
    other = "sha256:" + "b" * 64
    with pytest.raises(ResolutionError, match="no version satisfies both"):
        resolve(GraphInput([cfg("a", need("provider-x", d)), cfg("b", need("provider-x", other))], data))


def test_installed_is_kept_by_default_and_reported_incompatible() -> None:
    data = Memory({R + "provider-x": PROVIDER_X})
    x = Installed(R + "provider-x", "v1.4.0", "provider-x")
    a = cfg("configuration-a", need("provider-x", ">=v1.5.0"))
    plan = resolve(GraphInput([a, x], data))
    assert plan.versions[R + "provider-x"] == "v1.4.0" and not plan.changes
    assert plan.incompatible == (
        f"existing package {R}provider-x@v1.4.0 is incompatible with constraint >=v1.5.0",
    )
    assert data.fetched == []  # nothing fetched: installed versions come from the Lock


def test_upgrades_take_the_minimal_version_and_downgrades_the_highest_below() -> None:
    data = Memory({R + "provider-x": PROVIDER_X})
    x = Installed(R + "provider-x", "v1.4.0", "provider-x")
    up = resolve(GraphInput([cfg("a", need("provider-x", ">=v1.5.0")), x], data, upgrades=True))
    assert up.versions[R + "provider-x"] == "v1.5.2" and up.changes[0].action == "upgrade"
    x2 = Installed(R + "provider-x", "v2.0.1", "provider-x")
    with pytest.raises(ResolutionError, match="provider-x: a requires <v2.0.0"):
        resolve(GraphInput([cfg("a", need("provider-x", "<v2.0.0")), x2], data, upgrades=True))
    down = resolve(
        GraphInput([cfg("a", need("provider-x", "<v2.0.0")), x2], data, upgrades=True, downgrades=True)
    )
    assert down.versions[R + "provider-x"] == "v1.5.2" and down.changes[0].action == "downgrade"


def test_invalid_constraint_and_unlistable_source() -> None:
    with pytest.raises(ResolutionError, match="invalid constraint"):
        resolve(GraphInput([cfg("a", need("provider-x", ">=banana"))], Memory({})))
    with pytest.raises(ResolutionError, match="cannot list versions"):
        resolve(GraphInput([cfg("a", need("provider-x", ">=v1.0.0"))], Memory({})))


def test_cycle_is_named() -> None:
    a = cfg("a", need("b", ">=v0.0.0", "Configuration"))
    b = Installed(R + "b", "v1.0.0", "b", (need("a", ">=v0.0.0", "Configuration"),))
    assert find_cycle([a, b]) == [R + "a", R + "b", R + "a"]
    assert find_cycle([a]) is None
