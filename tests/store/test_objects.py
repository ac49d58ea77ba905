"""Create, get, list, update, update_status, apply, modify: the API server's rules on a real database."""

from __future__ import annotations

import copy
import re
from typing import Any

import pytest

from tests.store.conftest import Clock
from tests.store.objs import configuration, owner_ref, revision
from xplane.store import (
    AlreadyExistsError,
    BadRequestError,
    ConflictError,
    InvalidError,
    Kind,
    NotFoundError,
    Store,
    UnknownKindError,
)

UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}\Z")


def test_create_fills_the_server_fields_and_get_returns_the_same(store: Store, clock: Clock) -> None:
    given = configuration("platform-ref-aws")
    given["metadata"].update(
        uid="forged", resourceVersion="77", generation=9, creationTimestamp="1999-01-01T00:00:00Z"
    )
    created = store.create(given)
    meta = created["metadata"]
    assert UUID.match(meta["uid"]) and meta["uid"] != "forged"
    assert meta["resourceVersion"] == "1"
    assert meta["generation"] == 1
    assert meta["creationTimestamp"] == "2026-07-25T17:20:00Z"  # the clock's 1_785_000_000
    assert "namespace" not in meta  # cluster-scoped
    assert store.get("configuration", "platform-ref-aws") == created
    assert created["spec"] == {"package": "registry.example.com/acme/platform:v1.0.0"}


def test_create_does_not_change_the_callers_dict(store: Store) -> None:
    given = configuration("a", labels={"x": "y"})
    before = copy.deepcopy(given)
    store.create(given)
    assert given == before


def test_resource_versions_increase_store_wide(store: Store) -> None:
    a = store.create(configuration("a"))
    b = store.create(configuration("b"))
    a2 = store.update(dict(a, spec={"package": "registry.example.com/x/y:v2"}))
    versions = [int(o["metadata"]["resourceVersion"]) for o in (a, b, a2)]
    assert versions == sorted(versions) and len(set(versions)) == 3
    assert store.resource_version == a2["metadata"]["resourceVersion"]


def test_create_twice_is_already_exists(store: Store) -> None:
    store.create(configuration("foo"))
    with pytest.raises(AlreadyExistsError) as e:
        store.create(configuration("foo"))
    assert str(e.value) == 'configurations.pkg.crossplane.io "foo" already exists'


def test_not_found_messages_are_kubectls(store: Store) -> None:
    with pytest.raises(NotFoundError) as e:
        store.get("configurations", "foo")
    assert str(e.value) == 'configurations.pkg.crossplane.io "foo" not found'
    assert e.value.exit_code == 3
    with pytest.raises(NotFoundError) as e2:
        store.get("secret", "example-secret")
    assert str(e2.value) == 'secrets "example-secret" not found'
    assert store.try_get("configuration", "foo") is None


def test_generation_moves_with_the_spec_only(store: Store) -> None:
    c = store.create(configuration("c"))
    c["metadata"]["labels"] = {"team": "a"}
    c = store.update(c)
    assert c["metadata"]["generation"] == 1
    c["spec"]["packagePullPolicy"] = "Always"
    c = store.update(c)
    assert c["metadata"]["generation"] == 2
    c["status"] = {"conditions": [{"type": "Installed", "status": "True"}]}
    c = store.update_status(c)
    assert c["metadata"]["generation"] == 2
    assert c["status"]["conditions"][0]["type"] == "Installed"


def test_a_write_that_changes_nothing_is_not_a_write(store: Store) -> None:
    c = store.create(configuration("c"))
    rv = store.resource_version
    again = store.update(copy.deepcopy(c))
    assert again == c
    assert store.resource_version == rv
    assert store.update_status(dict(c, status=None)) == c
    assert store.changes_since(rv) == []


def test_spec_key_order_is_not_a_change(store: Store) -> None:
    c = store.create(
        configuration("c") | {"spec": {"package": "r.example.com/a:v1", "packagePullPolicy": "Never"}}
    )
    reordered = dict(c, spec={"packagePullPolicy": "Never", "package": "r.example.com/a:v1"})
    assert store.update(reordered)["metadata"]["generation"] == 1


def test_update_needs_the_resource_version_it_read(store: Store) -> None:
    c = store.create(configuration("foo"))
    fresh = store.update(dict(c, spec={"package": "r.example.com/a:v2"}))
    with pytest.raises(ConflictError) as e:
        store.update(dict(c, spec={"package": "r.example.com/a:v3"}))  # stale: would lose the v2 write
    assert str(e.value) == (
        'Operation cannot be fulfilled on configurations.pkg.crossplane.io "foo": the object has been modified; '
        "please apply your changes to the latest version and try again"
    )
    assert store.get("configuration", "foo")["spec"]["package"] == "r.example.com/a:v2"
    missing = copy.deepcopy(fresh)
    del missing["metadata"]["resourceVersion"]
    with pytest.raises(
        InvalidError, match=r"metadata.resourceVersion: Invalid value: 0x0: must be specified"
    ):
        store.update(missing)
    garbage = copy.deepcopy(fresh)
    garbage["metadata"]["resourceVersion"] = "not-a-number"
    with pytest.raises(ConflictError):
        store.update(garbage)


def test_a_uid_of_a_replaced_object_is_a_conflict(store: Store) -> None:
    old = store.create(configuration("foo"))
    store.delete("configuration", "foo")
    new = store.create(configuration("foo"))
    stale = dict(old, metadata=dict(old["metadata"], resourceVersion=new["metadata"]["resourceVersion"]))
    with pytest.raises(ConflictError, match="Precondition failed: UID in precondition"):
        store.update(stale)


def test_update_of_a_missing_object_is_not_found(store: Store) -> None:
    c = configuration("ghost")
    c["metadata"]["resourceVersion"] = "1"
    with pytest.raises(NotFoundError):
        store.update(c)


def test_status_is_a_subresource(store: Store) -> None:
    c = store.create(configuration("c") | {"status": {"currentRevision": "forged"}})
    assert "status" not in c  # create ignores status, as for a CRD with subresources.status
    c["status"] = {"currentRevision": "c-1"}
    c["spec"]["package"] = "r.example.com/a:v9"
    with_status = store.update_status(c)
    assert with_status["status"] == {"currentRevision": "c-1"}
    assert with_status["spec"]["package"] == "registry.example.com/acme/platform:v1.0.0"  # spec ignored
    with_status["status"] = {"currentRevision": "overwritten-by-update?"}
    updated = store.update(with_status)
    assert updated["status"] == {"currentRevision": "c-1"}  # update ignores status


def test_kinds_without_a_status_subresource(store: Store) -> None:
    ic = store.create(
        {
            "apiVersion": "pkg.crossplane.io/v1beta1",
            "kind": "ImageConfig",
            "metadata": {"name": "mirror"},
            "spec": {"matchImages": [{"prefix": "registry.example.com"}]},
        }
    )
    with pytest.raises(BadRequestError, match="imageconfigs.pkg.crossplane.io has no status subresource"):
        store.update_status(dict(ic, status={"x": 1}))


def test_apply_creates_then_replaces_what_the_manifest_says(store: Store) -> None:
    first = store.apply(configuration("c", labels={"a": "1", "b": "2"}))
    assert first["metadata"]["generation"] == 1
    store.modify("configuration", "c", lambda o: o["metadata"].update(finalizers=["x.example.org/keep"]))
    store.modify("configuration", "c", lambda o: o.update(status={"currentRevision": "c-1"}), status=True)
    second = store.apply(
        configuration("c", package="registry.example.com/acme/platform:v2.0.0", labels={"a": "1"})
    )
    meta = second["metadata"]
    assert meta["labels"] == {"a": "1"}  # what the manifest says, b removed
    assert meta["finalizers"] == ["x.example.org/keep"]  # controllers' fields kept
    assert second["status"] == {"currentRevision": "c-1"}
    assert meta["generation"] == 2
    rv = store.resource_version
    assert store.apply(
        configuration("c", package="registry.example.com/acme/platform:v2.0.0", labels={"a": "1"})
    )
    assert store.resource_version == rv  # same manifest again: no write
    stale = configuration("c", resourceVersion=first["metadata"]["resourceVersion"])
    with pytest.raises(ConflictError):
        store.apply(stale)


def test_modify_changes_in_one_transaction(store: Store) -> None:
    store.create(configuration("c"))

    def bump(o: dict[str, Any]) -> None:
        o["spec"]["revisionHistoryLimit"] = 3

    out = store.modify("configurations", "c", bump)
    assert out["spec"]["revisionHistoryLimit"] == 3 and out["metadata"]["generation"] == 2
    with pytest.raises(NotFoundError):
        store.modify("configurations", "missing", bump)


@pytest.mark.parametrize(
    ("meta", "expected"),
    [
        (
            {"name": "Platform_Ref"},
            'Configuration.pkg.crossplane.io "Platform_Ref" is invalid: metadata.name: Invalid value: "Platform_Ref": '
            "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must "
            "start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is "
            "'[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')",
        ),
        (
            {},
            "Configuration.pkg.crossplane.io is invalid: metadata.name: Required value: name or generateName is required",
        ),
        (
            {"name": "ok", "labels": {"bad key!": "v"}},
            'Configuration.pkg.crossplane.io "ok" is invalid: metadata.labels: Invalid value: "bad key!": name part must',
        ),
        (
            {"name": "ok", "labels": {"k": "x" * 64}},
            'Configuration.pkg.crossplane.io "ok" is invalid: metadata.labels: Invalid value: "'
            + "x" * 64
            + '": must be no more than 63 characters',
        ),
        (
            {"name": "ok", "color": "blue"},
            'Configuration.pkg.crossplane.io "ok" is invalid: unknown field "metadata.color"',
        ),
        (
            {"name": "ok", "finalizers": "nope"},
            "metadata.finalizers: Invalid value: must be a list of strings",
        ),
    ],
)
def test_invalid_metadata_is_refused_with_kubernetes_words(
    store: Store, meta: dict[str, Any], expected: str
) -> None:
    obj = {"apiVersion": "pkg.crossplane.io/v1", "kind": "Configuration", "metadata": meta, "spec": {}}
    with pytest.raises(InvalidError) as e:
        store.create(obj)
    assert expected in str(e.value)
    assert e.value.exit_code == 1
    assert store.list("configurations") == []


def test_every_problem_is_reported_at_once(store: Store) -> None:
    owner = store.create(configuration("owner"))
    refs = [owner_ref(owner, controller=True), dict(owner_ref(owner, controller=True), uid="other")]
    obj = configuration("Bad", labels={"-x": "y"}, ownerReferences=refs)
    with pytest.raises(InvalidError) as e:
        store.create(obj)
    assert len(e.value.causes) == 3
    assert "Only one reference can have Controller set to true" in str(e.value)


def test_generate_name(store: Store) -> None:
    obj = configuration("")
    obj["metadata"] = {"generateName": "platform-"}
    created = store.create(obj)
    assert re.fullmatch(r"platform-[bcdfghjklmnpqrstvwxz2456789]{5}", created["metadata"]["name"])


def test_unknown_kinds_and_versions(store: Store) -> None:
    with pytest.raises(UnknownKindError) as e:
        store.create({"apiVersion": "example.org/v1", "kind": "Widget", "metadata": {"name": "w"}})
    assert (
        str(e.value)
        == 'no matches for kind "Widget" in version "example.org/v1"\n  hint: ensure CRDs are installed first'
    )
    assert e.value.exit_code == 2
    with pytest.raises(
        UnknownKindError, match='no matches for kind "Configuration" in version "pkg.crossplane.io/v1beta1"'
    ):
        store.create(dict(configuration("c"), apiVersion="pkg.crossplane.io/v1beta1"))
    with pytest.raises(InvalidError, match="apiVersion: Required value"):
        store.create({"kind": "Configuration", "metadata": {"name": "c"}})


def test_a_served_older_version_is_accepted_and_kept(store: Store) -> None:
    fn = store.create(
        {
            "apiVersion": "pkg.crossplane.io/v1beta1",
            "kind": "Function",
            "metadata": {"name": "fn"},
            "spec": {"package": "x"},
        }
    )
    assert fn["apiVersion"] == "pkg.crossplane.io/v1beta1"
    assert store.get("functions", "fn")["apiVersion"] == "pkg.crossplane.io/v1beta1"


def test_namespaces(store: Store) -> None:
    secret = {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s"}, "stringData": {"k": "v"}}
    default = store.create(secret)
    assert default["metadata"]["namespace"] == "crossplane-system"
    other = store.create(secret | {"metadata": {"name": "s", "namespace": "team-a"}})
    assert other["metadata"]["namespace"] == "team-a"
    assert [o["metadata"]["namespace"] for o in store.list("secrets")] == ["crossplane-system", "team-a"]
    assert len(store.list("secrets", namespace="team-a")) == 1
    assert store.get("secret", "s", "team-a")["metadata"]["uid"] == other["metadata"]["uid"]
    cluster = store.create(configuration("c") | {"metadata": {"name": "c", "namespace": "ignored"}})
    assert "namespace" not in cluster["metadata"]


def test_secrets_get_the_api_servers_treatment(store: Store) -> None:
    s = store.create(
        {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": "example-secret"},
            "type": "kubernetes.io/dockerconfigjson",
            "stringData": {".dockerconfigjson": '{"auths": {"registry.example.com": {"auth": "dTpw"}}}'},
        }
    )
    assert "stringData" not in s
    assert s["data"] == {
        ".dockerconfigjson": "eyJhdXRocyI6IHsicmVnaXN0cnkuZXhhbXBsZS5jb20iOiB7ImF1dGgiOiAiZFRwdyJ9fX0="
    }
    assert "generation" not in s["metadata"]
    opaque = store.create({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "plain"}})
    assert opaque["type"] == "Opaque"
    with pytest.raises(InvalidError, match='type: Invalid value: "Opaque": field is immutable'):
        store.update(dict(s, type="Opaque"))


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ({"type": "kubernetes.io/dockerconfigjson", "data": {}}, "data[.dockerconfigjson]: Required value"),
        (
            {
                "type": "kubernetes.io/dockerconfigjson",
                "stringData": {".dockerconfigjson": "hunter2-not-json"},
            },
            'data[.dockerconfigjson]: Invalid value: "<secret contents redacted>": must be a JSON object',
        ),
        (
            {"data": {"password": "hunter2!!"}},
            'data[password]: Invalid value: "<secret contents redacted>": illegal base64',
        ),
        ({"type": "kubernetes.io/basic-auth", "data": {}}, "one of username or password is required"),
    ],
)
def test_bad_secrets_never_show_their_data(store: Store, body: dict[str, Any], expected: str) -> None:
    with pytest.raises(InvalidError) as e:
        store.create({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s"}} | body)
    assert expected in str(e.value)
    assert "hunter2" not in str(e.value)


def test_values_json_cannot_hold_are_invalid(store: Store) -> None:
    with pytest.raises(InvalidError, match="spec: Invalid value: not JSON"):
        store.create(configuration("c") | {"spec": {"n": 2**70}})


def test_no_new_finalizers_once_deleting(store: Store) -> None:
    store.create(configuration("c", finalizers=["a.example.org/f"]))
    deleting = store.delete("configuration", "c")
    assert deleting is not None
    deleting["metadata"]["finalizers"].append("b.example.org/f")
    with pytest.raises(InvalidError, match="no new finalizers can be added if the object is being deleted"):
        store.update(deleting)


def test_events_are_not_written_as_objects(store: Store) -> None:
    with pytest.raises(BadRequestError, match="record_event"):
        store.create({"apiVersion": "v1", "kind": "Event", "metadata": {"name": "e"}})


def test_list_is_ordered_and_carries_the_resource_version(store: Store) -> None:
    for name in ("b", "c", "a"):
        store.create(configuration(name))
    listed = store.list("configurations")
    assert [o["metadata"]["name"] for o in listed] == ["a", "b", "c"]
    assert listed.resource_version == store.resource_version
    assert store.list("providers") == []


def test_list_by_label_selector(store: Store) -> None:
    parent = store.create(configuration("parent"))
    store.create(
        revision("parent-1", parent) | {"metadata": {"name": "parent-1", "labels": {"tier": "a", "x": "1"}}}
    )
    store.create(revision("parent-2", parent) | {"metadata": {"name": "parent-2", "labels": {"tier": "b"}}})
    store.create(revision("parent-3", parent) | {"metadata": {"name": "parent-3"}})

    def names(selector: str) -> list[str]:
        return [o["metadata"]["name"] for o in store.list("configurationrevisions", selector=selector)]

    assert names("tier=a") == ["parent-1"]
    assert names("tier in (a,b)") == ["parent-1", "parent-2"]
    assert names("tier!=a") == ["parent-2", "parent-3"]
    assert names("tier notin (b)") == ["parent-1", "parent-3"]
    assert names("!tier") == ["parent-3"]
    assert names("tier,x==1") == ["parent-1"]
    assert names("") == ["parent-1", "parent-2", "parent-3"]


def test_label_index_follows_label_changes(store: Store) -> None:
    c = store.create(configuration("c", labels={"team": "a"}))
    c["metadata"]["labels"] = {"team": "b"}
    store.update(c)
    assert store.list("configuration", selector="team=a") == []
    assert len(store.list("configuration", selector="team=b")) == 1
    assert store.verify() == []


def test_batch_is_all_or_nothing(store: Store) -> None:
    with pytest.raises(RuntimeError), store.batch():
        store.create(configuration("a"))
        store.create(configuration("b"))
        raise RuntimeError("boom")
    assert store.list("configurations") == []
    rv = store.resource_version
    with store.batch():
        store.create(configuration("a"))
        with pytest.raises(AlreadyExistsError):
            store.create(configuration("a"))  # fails alone
        store.create(configuration("b"))
    assert [o["metadata"]["name"] for o in store.list("configurations")] == ["a", "b"]
    assert [c.type for c in store.changes_since(rv)] == ["ADDED", "ADDED"]


def test_writes_survive_reopening(db_path: Any, store: Store) -> None:
    created = store.create(configuration("c"))
    store.close()
    with Store.open(db_path) as again:
        assert again.get("configuration", "c") == created


def test_an_admission_hook_defaults_and_refuses(db_path: Any) -> None:
    seen: list[tuple[str, bool]] = []

    def admit(kind: Kind, new: dict[str, Any], old: dict[str, Any] | None) -> None:
        seen.append((kind.kind, old is not None))
        if kind.kind != "Configuration":
            return
        new["spec"].setdefault("revisionActivationPolicy", "Automatic")
        if ":" not in new["spec"].get("package", ""):
            raise InvalidError(
                kind.group_kind, new["metadata"]["name"], ["spec.package: Invalid value: needs a tag"]
            )

    given = configuration("c")
    with Store.open(db_path, admission=admit) as store:
        created = store.create(given)
        assert created["spec"]["revisionActivationPolicy"] == "Automatic"
        assert "revisionActivationPolicy" not in given["spec"]  # the hook worked on a copy
        with pytest.raises(InvalidError, match="spec.package: Invalid value: needs a tag"):
            store.update(dict(created, spec={"package": "no-tag"}))
        assert store.get("configuration", "c")["spec"]["package"] == given["spec"]["package"]
    assert seen == [("Configuration", False), ("Configuration", True)]
