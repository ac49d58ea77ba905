"""``xp apply|get|delete|patch`` over a real store in tmp_path, run in-process as ``xp`` runs."""

from __future__ import annotations

import io
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from xplane.cli.main import cli
from xplane.cli.output import run_cli
from xplane.store import Store

ISSUE_EXAMPLE = """\
apiVersion: pkg.crossplane.io/v1
kind: Configuration
metadata: {name: platform-ref-aws}
spec:
  package: registry.example.com/upbound/platform-ref-aws:v0.6.0
  packagePullPolicy: IfNotPresent        # Always re-checks every minute; Never installs from the cache only
  revisionActivationPolicy: Automatic    # or Manual
  revisionHistoryLimit: 10               # default 1; 0 keeps every revision
  packagePullSecrets: [{name: example-secret}]
  ignoreCrossplaneConstraints: false
---
apiVersion: pkg.crossplane.io/v1
kind: Configuration
metadata: {name: offline-platform-ref-aws}
spec:
  package: platform-ref-aws              # a package loaded into the cache under that name
  packagePullPolicy: Never
"""
PROVIDER = """\
apiVersion: pkg.crossplane.io/v1
kind: Provider
metadata: {name: provider-nop, labels: {tier: infra}}
spec:
  package: xpkg.crossplane.io/crossplane-contrib/provider-nop:v0.4.0
"""
FUNCTION = """\
apiVersion: pkg.crossplane.io/v1
kind: Function
metadata: {name: function-patch-and-transform, labels: {tier: fn}}
spec:
  package: xpkg.crossplane.io/crossplane-contrib/function-patch-and-transform:v0.8.2
"""
IMAGE_CONFIG = """\
apiVersion: pkg.crossplane.io/v1beta1
kind: ImageConfig
metadata: {name: private-mirror}
spec:
  matchImages: [{prefix: registry.example.com/org}]
  rewriteImage: {prefix: mirror.internal/org}
"""
XRD = """\
apiVersion: apiextensions.crossplane.io/v2
kind: CompositeResourceDefinition
metadata: {name: xnetworks.example.org}
spec:
  group: example.org
  names: {kind: XNetwork, plural: xnetworks}
  versions: [{name: v1alpha1, served: true, referenceable: true}]
"""


class Result:
    """What one ``xp`` run gave."""

    def __init__(self, code: int, out: str, err: str) -> None:
        self.code, self.out, self.err = code, out, err


Run = Callable[..., Result]


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    h = tmp_path / "home"
    monkeypatch.setenv("XPLANE_HOME", str(h))
    monkeypatch.chdir(tmp_path)
    return h


@pytest.fixture
def xp(capsys: pytest.CaptureFixture[str], home: Path, monkeypatch: pytest.MonkeyPatch) -> Run:
    def run(*args: str, stdin: str | None = None) -> Result:
        if stdin is not None:
            monkeypatch.setattr("sys.stdin", io.TextIOWrapper(io.BytesIO(stdin.encode())))
        capsys.readouterr()
        code = run_cli(cli, list(args))
        out, err = capsys.readouterr()
        return Result(code, out, err)

    return run


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def stored(home: Path, kind: str, name: str, namespace: str | None = None) -> dict[str, Any] | None:
    with Store.open(home=home, create=False) as s:
        return s.try_get(kind, name, namespace)


# apply -----------------------------------------------------------------------------------------


def test_apply_the_issue_example_then_unchanged_then_configured(xp: Run, home: Path, tmp_path: Path) -> None:
    f = write(tmp_path / "pkgs.yaml", ISSUE_EXAMPLE)
    r = xp("apply", "-f", str(f))
    assert r.code == 0, r.err
    assert r.out.splitlines() == [
        "configuration.pkg.crossplane.io/platform-ref-aws created",
        "configuration.pkg.crossplane.io/offline-platform-ref-aws created",
    ]
    # upstream's CEL rule would refuse the unqualified name: a located warning, and it is stored
    assert "pkgs.yaml:12: Configuration/offline-platform-ref-aws: warning: " in r.err
    assert "must be a fully qualified image name" in r.err
    offline = stored(home, "configuration", "offline-platform-ref-aws")
    assert offline is not None and offline["spec"]["package"] == "platform-ref-aws"

    r = xp("apply", "-f", str(f))
    assert r.out.splitlines() == [
        "configuration.pkg.crossplane.io/platform-ref-aws unchanged",
        "configuration.pkg.crossplane.io/offline-platform-ref-aws unchanged",
    ]
    write(f, ISSUE_EXAMPLE.replace("revisionHistoryLimit: 10", "revisionHistoryLimit: 3"))
    r = xp("apply", "-f", str(f))
    assert r.out.splitlines()[0] == "configuration.pkg.crossplane.io/platform-ref-aws configured"
    obj = stored(home, "configuration", "platform-ref-aws")
    assert obj is not None
    assert obj["metadata"]["generation"] == 2 and obj["spec"]["revisionHistoryLimit"] == 3


def test_apply_fills_in_the_crd_defaults(xp: Run, home: Path, tmp_path: Path) -> None:
    f = write(tmp_path / "m.yaml", "\n---\n".join([ISSUE_EXAMPLE, PROVIDER, FUNCTION, IMAGE_CONFIG]))
    assert xp("apply", "-f", str(f)).code == 0
    offline = stored(home, "configuration", "offline-platform-ref-aws")
    assert offline is not None and offline["spec"] == {
        "ignoreCrossplaneConstraints": False,
        "package": "platform-ref-aws",
        "packagePullPolicy": "Never",
        "revisionActivationPolicy": "Automatic",
        "revisionHistoryLimit": 1,
        "skipDependencyResolution": False,
    }
    for kind, name in (("provider", "provider-nop"), ("function", "function-patch-and-transform")):
        obj = stored(home, kind, name)
        assert obj is not None
        assert obj["spec"]["runtimeConfigRef"] == {
            "apiVersion": "pkg.crossplane.io/v1beta1",
            "kind": "DeploymentRuntimeConfig",
            "name": "default",
        }
        assert obj["spec"]["packagePullPolicy"] == "IfNotPresent"
    ic = stored(home, "imageconfig", "private-mirror")
    assert ic is not None and ic["spec"]["matchImages"] == [
        {"prefix": "registry.example.com/org", "type": "Prefix"}
    ]


def test_apply_directory_skips_a_malformed_file_and_applies_the_others(
    xp: Run, home: Path, tmp_path: Path
) -> None:
    d = tmp_path / "manifests"
    write(d / "a-provider.yaml", PROVIDER)
    # the first document is fine, the second is not YAML: nothing from this file is applied
    write(d / "b-broken.yaml", FUNCTION + "---\napiVersion: v1\nkind: Secret\nmetadata: {name: [x\n")
    write(d / "c-config.json", json.dumps(yaml.safe_load(ISSUE_EXAMPLE.split("---")[0])))
    write(d / "notes.txt", "not a manifest")
    write(d / "sub" / "deep.yaml", IMAGE_CONFIG)
    r = xp("apply", "-f", str(d))
    assert r.code == 1
    assert sorted(r.out.splitlines()) == [
        "configuration.pkg.crossplane.io/platform-ref-aws created",
        "provider.pkg.crossplane.io/provider-nop created",
    ]
    assert f"xp: error: {d / 'b-broken.yaml'}:10:" in r.err
    assert stored(home, "function", "function-patch-and-transform") is None
    assert stored(home, "imageconfig", "private-mirror") is None  # not recursive
    r = xp("apply", "-R", "-f", str(d / "sub"))
    assert r.code == 0 and r.out == "imageconfig.pkg.crossplane.io/private-mirror created\n"


def test_apply_unknown_kind_is_kubectls_mapping_error_and_refuses_the_file(
    xp: Run, home: Path, tmp_path: Path
) -> None:
    f = write(
        tmp_path / "f.yaml", PROVIDER + "---\napiVersion: example.org/v1\nkind: Foo\nmetadata: {name: x}\n"
    )
    g = write(tmp_path / "g.yaml", FUNCTION)
    r = xp("apply", "-f", str(f), "-f", str(g))
    assert r.code == 1
    assert (
        f'xp: error: resource mapping not found for name: "x" namespace: "" from "{f}": '
        'no matches for kind "Foo" in version "example.org/v1"'
    ) in r.err
    assert "ensure CRDs are installed first" in r.err
    assert f"nothing from {f} was applied" in r.err
    assert stored(home, "provider", "provider-nop") is None
    assert r.out == "function.pkg.crossplane.io/function-patch-and-transform created\n"


def test_apply_unknown_and_invalid_fields_are_refused(xp: Run, home: Path, tmp_path: Path) -> None:
    f = write(
        tmp_path / "f.yaml",
        PROVIDER.replace(
            "spec:\n", "spec:\n  foo: 1\n  revisionHistoryLimit: two\n  packagePullPolicy: Sometimes\n"
        ),
    )
    r = xp("apply", "-f", str(f))
    assert r.code == 1
    assert (
        f'error when creating "{f}": Provider in version "v1" cannot be handled as a Provider: '
        'strict decoding error: unknown field "spec.foo"'
    ) in r.err
    assert 'spec.revisionHistoryLimit in body must be of type integer: "string"' in r.err
    assert 'spec.packagePullPolicy: Unsupported value: "Sometimes"' in r.err
    assert stored(home, "provider", "provider-nop") is None
    r = xp(
        "apply",
        "-f",
        str(
            write(
                tmp_path / "g.yaml",
                "apiVersion: pkg.crossplane.io/v1\nkind: Configuration\nmetadata: {name: c}\nspec: {}\n",
            )
        ),
    )
    assert r.code == 1 and "spec.package: Required value" in r.err


def test_apply_metadata_that_is_not_an_object_refuses_the_file(xp: Run, home: Path, tmp_path: Path) -> None:
    for kind, doc in [
        (
            "Provider",
            PROVIDER.replace("metadata: {name: provider-nop, labels: {tier: infra}}", "metadata: [x]"),
        ),
        ("Secret", "apiVersion: v1\nkind: Secret\nmetadata: 7\n"),
    ]:
        f = write(tmp_path / "f.yaml", doc + "---\n" + FUNCTION)
        r = xp("apply", "-f", str(f))
        got = "array" if kind == "Provider" else "integer"
        assert r.code == 1, r.err
        assert (
            f'error validating "{f}" ({f}:1): error validating data: ValidationError({kind}.metadata): invalid type '
            f'for io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta: got "{got}", expected "map"'
        ) in r.err
        assert f"nothing from {f} was applied" in r.err and "Traceback" not in r.err
        assert stored(home, "function", "function-patch-and-transform") is None


def test_apply_random_wrong_types_end_in_an_apply_or_a_refusal(xp: Run, home: Path, tmp_path: Path) -> None:
    """Any field of the package kinds (or a Secret, a CRD) replaced by a value of another type, or removed:
    exit 0 or 1 with a message, never an exception out of the command."""
    import copy
    import random

    from tests.support.mutate import mutate

    base = [
        d for text in (ISSUE_EXAMPLE, PROVIDER, FUNCTION, IMAGE_CONFIG) for d in yaml.safe_load_all(text) if d
    ]
    base.append(
        {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s", "namespace": "ns"}, "data": {}}
    )
    base.append(
        {
            "apiVersion": "apiextensions.k8s.io/v1",
            "kind": "CustomResourceDefinition",
            "metadata": {"name": "buckets.s3.example.org"},
            "spec": {
                "group": "s3.example.org",
                "scope": "Namespaced",
                "names": {"kind": "Bucket", "plural": "buckets", "shortNames": ["bk"], "categories": ["all"]},
                "versions": [
                    {
                        "name": "v1",
                        "served": True,
                        "storage": True,
                        "additionalPrinterColumns": [{"name": "R", "jsonPath": ".spec.r", "type": "string"}],
                    }
                ],
            },
        }
    )
    rng = random.Random(10)
    codes = set()
    for i in range(200):
        docs = copy.deepcopy(base)
        path = mutate(rng, docs)
        f = write(tmp_path / "m.yaml", yaml.safe_dump_all(docs))
        r = xp("apply", "-f", str(f), "--dry-run", "server" if i % 2 else "client")
        assert r.code in (0, 1), (path, r.err)
        assert r.code == 0 or r.err
        codes.add(r.code)
    assert codes == {0, 1}


def test_apply_from_stdin_and_empty_input(xp: Run, home: Path) -> None:
    r = xp("apply", "-f", "-", stdin=PROVIDER)
    assert r.code == 0 and r.out == "provider.pkg.crossplane.io/provider-nop created\n"
    r = xp("apply", "-f", "-", stdin="# nothing\n")
    assert r.code == 1 and "no objects passed to apply" in r.err
    r = xp("apply", "-f", "nope.yaml")
    assert r.code == 1 and 'the path "nope.yaml" does not exist' in r.err


def test_apply_store_refusal_rolls_back_only_that_file(xp: Run, home: Path, tmp_path: Path) -> None:
    bad_name = FUNCTION.replace("name: function-patch-and-transform", "name: Not_A_Name")
    f = write(tmp_path / "f.yaml", PROVIDER + "---\n" + bad_name)
    g = write(tmp_path / "g.yaml", IMAGE_CONFIG)
    r = xp("apply", "-f", str(f), "-f", str(g))
    assert r.code == 1
    assert 'metadata.name: Invalid value: "Not_A_Name"' in r.err
    assert stored(home, "provider", "provider-nop") is None
    assert r.out == "imageconfig.pkg.crossplane.io/private-mirror created\n"


def test_apply_dry_runs_store_nothing(xp: Run, home: Path, tmp_path: Path) -> None:
    f = write(tmp_path / "p.yaml", PROVIDER)
    assert (
        xp("apply", "-f", str(f), "--dry-run=client").out
        == "provider.pkg.crossplane.io/provider-nop created (dry run)\n"
    )
    r = xp("apply", "-f", str(f), "--dry-run=server")
    assert r.out == "provider.pkg.crossplane.io/provider-nop created (server dry run)\n"
    assert stored(home, "provider", "provider-nop") is None


def test_every_mutating_command_settles_once(
    xp: Run, home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[tuple[list[str], Path]] = []

    def settle(store: Store, where: Path) -> None:
        calls.append(([o["metadata"]["name"] for o in store.list("providers")], where))

    monkeypatch.setattr("xplane.cli.controlplane_hook.settle", settle)
    f = write(tmp_path / "p.yaml", PROVIDER)
    xp("apply", "-f", str(f))
    xp("patch", "provider", "provider-nop", "-p", '{"spec":{"revisionHistoryLimit":2}}')
    xp("create", "secret", "generic", "s", "--from-literal", "a=b")
    xp("delete", "provider", "provider-nop")
    xp("get", "pkg")
    assert calls == [(["provider-nop"], home)] * 3 + [([], home)]


# get -------------------------------------------------------------------------------------------


def test_get_tables_and_formats(xp: Run, home: Path, tmp_path: Path) -> None:
    xp("apply", "-f", str(write(tmp_path / "m.yaml", "\n---\n".join([ISSUE_EXAMPLE, PROVIDER, FUNCTION]))))
    r = xp("get", "configurations")
    lines = r.out.splitlines()
    assert lines[0].split() == ["NAME", "INSTALLED", "HEALTHY", "PACKAGE", "AGE"]
    assert lines[2].split()[0] == "platform-ref-aws"
    # the package manager ran after the apply: registry.example.com cannot be reached from here
    assert lines[2].split()[1:] == [
        "False",
        "False",
        "registry.example.com/upbound/platform-ref-aws:v0.6.0",
        lines[2].split()[-1],
    ]
    assert lines[0].index("INSTALLED") == lines[2].index("False")
    assert lines[0].index("PACKAGE") == lines[2].index("registry.example.com")

    r = xp("get", "pkg")
    tables = r.out.split("\n\n")
    assert len(tables) == 3
    assert tables[0].splitlines()[1].startswith("configuration.pkg.crossplane.io/offline-platform-ref-aws ")
    assert tables[1].splitlines()[1].startswith("provider.pkg.crossplane.io/provider-nop ")
    assert tables[2].splitlines()[1].startswith("function.pkg.crossplane.io/function-patch-and-transform ")

    assert (
        xp("get", "providers.pkg.crossplane.io", "-o", "name").out
        == "provider.pkg.crossplane.io/provider-nop\n"
    )
    assert (
        xp("get", "pkg", "-l", "tier=fn", "-o", "name").out
        == "function.pkg.crossplane.io/function-patch-and-transform\n"
    )
    assert xp("get", "pkg", "-l", "tier in (fn,infra)", "-o", "name").out.count("\n") == 2
    assert xp("get", "provider/provider-nop", "-o", "name").out == "provider.pkg.crossplane.io/provider-nop\n"

    one = yaml.safe_load(xp("get", "configuration", "platform-ref-aws", "-o", "yaml").out)
    assert one["kind"] == "Configuration" and one["spec"]["revisionHistoryLimit"] == 10
    many = json.loads(xp("get", "pkg", "-o", "json").out)
    assert many["apiVersion"] == "v1" and many["kind"] == "List" and len(many["items"]) == 4
    assert many["metadata"] == {"resourceVersion": ""}
    listed = yaml.safe_load(xp("get", "configuration", "-o", "yaml").out)
    assert listed["kind"] == "List" and [i["metadata"]["name"] for i in listed["items"]] == [
        "offline-platform-ref-aws",
        "platform-ref-aws",
    ]
    text = xp("get", "configuration", "platform-ref-aws", "-o", "yaml").out
    assert 'creationTimestamp: "' in text and 'resourceVersion: "' in text  # quoted as kubectl does


def test_get_empty_missing_and_bad_input(xp: Run, home: Path) -> None:
    r = xp("get", "pkg")
    assert (r.code, r.out, r.err) == (0, "", "No resources found\n")
    assert not home.exists()  # reading never creates the state
    r = xp("get", "secrets")
    assert r.err == "No resources found in crossplane-system namespace.\n"
    assert xp("get", "pkg", "-o", "json").out.startswith('{\n    "apiVersion": "v1"')
    r = xp("get", "configuration", "nope")
    assert r.code == 3 and r.err == 'xp: error: configurations.pkg.crossplane.io "nope" not found\n'
    r = xp("get", "frobnicators")
    assert r.code == 2 and 'the server doesn\'t have a resource type "frobnicators"' in r.err
    r = xp("get", "pkg", "-l", "a in (")
    assert r.code == 2
    assert xp("get").code == 2


def _revision(store: Store, kind: str, name: str, owner: dict[str, Any], runtime: bool) -> dict[str, Any]:
    rev = store.create(
        {
            "apiVersion": "pkg.crossplane.io/v1",
            "kind": kind,
            "metadata": {
                "name": name,
                "labels": {"pkg.crossplane.io/package": owner["metadata"]["name"]},
                "ownerReferences": [
                    {
                        "apiVersion": "pkg.crossplane.io/v1",
                        "kind": owner["kind"],
                        "name": owner["metadata"]["name"],
                        "uid": owner["metadata"]["uid"],
                        "controller": True,
                        "blockOwnerDeletion": True,
                    }
                ],
            },
            "spec": {"desiredState": "Active", "image": owner["spec"]["package"], "revision": 1},
        }
    )
    conditions = [{"type": "RevisionHealthy", "status": "True", "reason": "HealthyPackageRevision"}]
    if runtime:
        conditions.append({"type": "RuntimeHealthy", "status": "False", "reason": "UnhealthyPackageRevision"})
    rev["status"] = {"conditions": conditions, "foundDependencies": 2, "installedDependencies": 1}
    return store.update_status(rev)


def test_get_revisions_uses_the_issue_layout(xp: Run, home: Path, tmp_path: Path) -> None:
    xp("apply", "-f", str(write(tmp_path / "m.yaml", ISSUE_EXAMPLE + "---\n" + PROVIDER)))
    with Store.open(home=home) as s:
        _revision(
            s,
            "ConfigurationRevision",
            "platform-ref-aws-1a2b3c",
            s.get("configuration", "platform-ref-aws"),
            False,
        )
        _revision(s, "ProviderRevision", "provider-nop-4d5e6f", s.get("provider", "provider-nop"), True)
    for args in (["get", "pkgrev"], ["get", "pkgrev", "-o", "wide"]):
        cfg, prov = xp(*args).out.split("\n\n")
        assert cfg.splitlines()[0].split() == [
            "NAME",
            "HEALTHY",
            "REVISION",
            "IMAGE",
            "STATE",
            "DEP-FOUND",
            "DEP-INSTALLED",
            "AGE",
        ]
        assert cfg.splitlines()[1].split()[:-1] == [
            "configurationrevision.pkg.crossplane.io/platform-ref-aws-1a2b3c",
            "True",
            "1",
            "registry.example.com/upbound/platform-ref-aws:v0.6.0",
            "Active",
            "2",
            "1",
        ]
        assert prov.splitlines()[0].split()[:3] == ["NAME", "HEALTHY", "RUNTIME"]
        assert prov.splitlines()[1].split()[1:3] == ["True", "False"]


def test_get_xrds_crds_and_secrets_across_namespaces(xp: Run, home: Path, tmp_path: Path) -> None:
    crd = {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": "xnetworks.example.org"},
        "spec": {
            "group": "example.org",
            "names": {"kind": "XNetwork", "plural": "xnetworks", "shortNames": ["xnet"]},
            "scope": "Cluster",
            "versions": [{"name": "v1alpha1", "served": True, "storage": True}],
        },
    }
    xp("apply", "-f", str(write(tmp_path / "m.yaml", XRD + "---\n" + json.dumps(crd))))
    assert (
        xp("get", "xrds", "-o", "name").out
        == "compositeresourcedefinition.apiextensions.crossplane.io/xnetworks.example.org\n"
    )
    assert xp("get", "xrd").out.splitlines()[0].split() == ["NAME", "ESTABLISHED", "OFFERED", "AGE"]
    assert xp("get", "crds").out.splitlines()[0].split() == ["NAME", "CREATED", "AT"]
    assert xp("get", "compositions").err == "No resources found\n"
    assert xp("get", "mrds").err == "No resources found\n"
    # a kind defined by a stored CRD is found by every later command
    r = xp(
        "apply", "-f", "-", stdin="apiVersion: example.org/v1alpha1\nkind: XNetwork\nmetadata: {name: n1}\n"
    )
    assert r.out == "xnetwork.example.org/n1 created\n"
    assert xp("get", "xnet", "-o", "name").out == "xnetwork.example.org/n1\n"

    xp("create", "secret", "generic", "a", "--from-literal", "k=v")
    xp("create", "secret", "generic", "b", "-n", "team-b", "--from-literal", "k=v")
    assert xp("get", "secrets", "-o", "name").out == "secret/a\n"
    assert xp("get", "secrets", "-n", "team-b", "-o", "name").out == "secret/b\n"
    r = xp("get", "secrets", "-A")
    assert r.out.splitlines()[0].split() == ["NAMESPACE", "NAME", "TYPE", "DATA", "AGE"]
    assert [line.split()[:2] for line in r.out.splitlines()[1:]] == [
        ["crossplane-system", "a"],
        ["team-b", "b"],
    ]


# delete and patch ------------------------------------------------------------------------------


def test_delete_by_name_file_and_owner_gc(xp: Run, home: Path, tmp_path: Path) -> None:
    f = write(tmp_path / "m.yaml", ISSUE_EXAMPLE + "---\n" + PROVIDER)
    xp("apply", "-f", str(f))
    with Store.open(home=home) as s:
        _revision(s, "ProviderRevision", "provider-nop-4d5e6f", s.get("provider", "provider-nop"), True)
    r = xp("delete", "provider", "provider-nop", "missing")
    assert r.out == 'provider.pkg.crossplane.io "provider-nop" deleted\n'
    assert r.code == 3 and 'providers.pkg.crossplane.io "missing" not found' in r.err
    assert stored(home, "providerrevision", "provider-nop-4d5e6f") is None  # garbage-collected
    assert xp("delete", "provider", "missing", "--ignore-not-found").code == 0
    r = xp("delete", "-f", str(f))
    assert r.code == 3  # the Provider in the file is gone already
    assert r.out.splitlines() == [
        'configuration.pkg.crossplane.io "platform-ref-aws" deleted',
        'configuration.pkg.crossplane.io "offline-platform-ref-aws" deleted',
    ]
    assert xp("delete", "provider").code == 2
    assert xp("delete").code == 2


def test_delete_wait_times_out_while_a_finalizer_holds(xp: Run, home: Path, tmp_path: Path) -> None:
    held = PROVIDER.replace("metadata: {", "metadata: {finalizers: [example.org/hold], ")
    xp("apply", "-f", str(write(tmp_path / "p.yaml", held)))
    r = xp("delete", "provider", "provider-nop", "--wait", "--timeout", "0.3s")
    assert r.out == 'provider.pkg.crossplane.io "provider-nop" deleted\n'
    assert r.code == 1 and "timed out waiting for the condition on providers/provider-nop" in r.err
    obj = stored(home, "provider", "provider-nop")
    assert obj is not None and obj["metadata"]["deletionTimestamp"]


def test_patch_activates_a_revision_and_refuses_unknown_fields(xp: Run, home: Path, tmp_path: Path) -> None:
    xp("apply", "-f", str(write(tmp_path / "p.yaml", PROVIDER)))
    with Store.open(home=home) as s:
        rev = _revision(s, "ProviderRevision", "provider-nop-4d5e6f", s.get("provider", "provider-nop"), True)
        rev["spec"]["desiredState"] = ""
        s.update(rev)
    r = xp(
        "patch",
        "providerrevision",
        "provider-nop-4d5e6f",
        "--type",
        "merge",
        "-p",
        '{"spec":{"desiredState":"Active"}}',
    )
    assert (r.code, r.out) == (0, "providerrevision.pkg.crossplane.io/provider-nop-4d5e6f patched\n")
    obj = stored(home, "providerrevision", "provider-nop-4d5e6f")
    assert obj is not None and obj["spec"]["desiredState"] == "Active"
    assert obj["spec"]["runtimeConfigRef"]["name"] == "default"  # defaults apply to every write
    r = xp("patch", "providerrevision/provider-nop-4d5e6f", "-p", "spec: {desiredState: Active}")
    assert r.out.endswith("patched (no change)\n")
    r = xp(
        "patch",
        "provider",
        "provider-nop",
        "--type",
        "json",
        "-p",
        '[{"op":"replace","path":"/spec/revisionHistoryLimit","value":4}]',
    )
    assert r.code == 0
    prov = stored(home, "provider", "provider-nop")
    assert (
        prov is not None and prov["spec"]["revisionHistoryLimit"] == 4 and prov["metadata"]["generation"] == 2
    )
    r = xp("patch", "provider", "provider-nop", "-p", '{"spec":{"foo":1}}')
    assert r.code == 1 and 'unknown field "spec.foo"' in r.err
    r = xp(
        "patch", "provider", "provider-nop", "--type", "json", "-p", '[{"op":"remove","path":"/spec/nope"}]'
    )
    assert r.code == 1 and 'path "/spec/nope" does not exist' in r.err
    assert xp("patch", "provider", "nope", "-p", "{}").code == 3
    assert xp("patch", "provider", "provider-nop", "-p", "[1]").code == 2
