"""``xp validate``: sources, output formats, counts, exit codes, and packages from a registry."""

from __future__ import annotations

import io
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.pkg.support import push, write_package
from tests.support.registry import RegistryServer
from xplane.cli.main import cli
from xplane.cli.output import run_cli


class Result:
    """What one ``xp`` run gave."""

    def __init__(self, code: int, out: str, err: str) -> None:
        self.code, self.out, self.err = code, out, err


Run = Callable[..., Result]


@pytest.fixture
def xp(capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Run:
    """Run ``xp ARGS`` in-process with a private cache; ``stdin=`` feeds standard input."""
    monkeypatch.setenv("XPLANE_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("DOCKER_CONFIG", str(tmp_path / "no-docker"))

    def run(*args: str, stdin: str | None = None) -> Result:
        capsys.readouterr()
        if stdin is not None:
            monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(stdin.encode())))
        code = run_cli(cli, list(args))
        out, err = capsys.readouterr()
        return Result(code, out, err)

    return run


def bucket_crd(group: str = "s3.example.org") -> dict[str, Any]:
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": f"buckets.{group}"},
        "spec": {
            "group": group,
            "names": {"kind": "Bucket", "plural": "buckets"},
            "scope": "Cluster",
            "versions": [
                {
                    "name": "v1beta1",
                    "served": True,
                    "storage": True,
                    "schema": {
                        "openAPIV3Schema": {
                            "type": "object",
                            "properties": {
                                "spec": {
                                    "type": "object",
                                    "properties": {
                                        "forProvider": {
                                            "type": "object",
                                            "required": ["region"],
                                            "properties": {
                                                "region": {
                                                    "type": "string",
                                                    "enum": ["eu-west-1", "us-east-1"],
                                                }
                                            },
                                        }
                                    },
                                }
                            },
                        }
                    },
                }
            ],
        },
    }


def bucket(name: str, region: str | None = "eu-west-1", group: str = "s3.example.org") -> dict[str, Any]:
    fp = {"region": region} if region else {}
    return {
        "apiVersion": f"{group}/v1beta1",
        "kind": "Bucket",
        "metadata": {"name": name},
        "spec": {"forProvider": fp},
    }


def dump(path: Path, *docs: Any) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump_all(docs, sort_keys=False))
    return path


SECRET = {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s"}}
GVK = "s3.example.org/v1beta1, Kind=Bucket"


def test_valid_resources_exit_0(xp: Run, tmp_path: Path) -> None:
    ext = dump(tmp_path / "ext.yaml", bucket_crd())
    res = dump(tmp_path / "res.yaml", bucket("a"), bucket("b"))
    r = xp("validate", str(ext), str(res))
    assert r.code == 0, r.err
    assert r.out.splitlines() == [
        f"[✓] {GVK}, a validated successfully",
        f"[✓] {GVK}, b validated successfully",
        "Total 2 resources: 0 missing schemas, 2 success cases, 0 failure cases",
    ]
    r = xp("validate", "--skip-success-results", str(ext), str(res))
    assert r.out.splitlines() == ["Total 2 resources: 0 missing schemas, 2 success cases, 0 failure cases"]


def test_invalid_exit_1_missing_exit_0_or_3(xp: Run, tmp_path: Path) -> None:
    ext = dump(tmp_path / "ext.yaml", bucket_crd())
    bad = dump(tmp_path / "bad.yaml", bucket("a", "mars-1"), bucket("b", None), SECRET)
    r = xp("validate", str(ext), str(bad))
    assert r.code == 1
    assert r.out.splitlines() == [
        f'[x] schema validation error {GVK}, a : spec.forProvider.region: Unsupported value: "mars-1": '
        'supported values: "eu-west-1", "us-east-1"',
        f"[x] schema validation error {GVK}, b : spec.forProvider.region: Required value",
        "[!] could not find CRD/XRD for: /v1, Kind=Secret",
        "Total 3 resources: 1 missing schemas, 0 success cases, 2 failure cases",
    ]
    assert "could not validate all resources" in r.err
    missing = dump(tmp_path / "missing.yaml", bucket("a"), SECRET)
    assert xp("validate", str(ext), str(missing)).code == 0
    r = xp("validate", "--error-on-missing-schemas", str(ext), str(missing))
    assert r.code == 3
    assert "schema(s) missing" in r.err


def test_usage_errors_exit_2(xp: Run, tmp_path: Path) -> None:
    assert xp("validate", "-", "-").code == 2
    assert xp("validate", "only-one").code == 2
    assert xp("validate", "-o", "xml", "a", "b").code == 2


def test_comma_lists_directories_and_stdin(xp: Run, tmp_path: Path) -> None:
    dump(tmp_path / "crds" / "nested" / "b.yaml", bucket_crd())
    (tmp_path / "crds" / "notes.txt").write_text("not yaml: [")
    one = dump(tmp_path / "r1.yaml", bucket("a"))
    two = dump(tmp_path / "r2.yml", bucket("b"))
    r = xp("validate", str(tmp_path / "crds"), f"{one},{two}")
    assert r.code == 0, r.err
    assert "Total 2 resources: 0 missing schemas, 2 success cases" in r.out
    r = xp("validate", str(tmp_path / "crds"), "-", stdin=yaml.safe_dump(bucket("c", "x")))
    assert r.code == 1 and f"{GVK}, c : spec.forProvider.region: Unsupported value" in r.out


def test_malformed_file_is_located_and_the_others_still_validate(xp: Run, tmp_path: Path) -> None:
    ext = dump(tmp_path / "ext.yaml", bucket_crd())
    good = dump(tmp_path / "res" / "a.yaml", bucket("a"))
    bad = tmp_path / "res" / "b.yaml"
    bad.write_text("apiVersion: v1\nkind: [unclosed\n")
    r = xp("validate", str(ext), str(tmp_path / "res"))
    assert r.code == 1
    assert f"[✓] {GVK}, a validated successfully" in r.out
    assert f"[x] {bad}:3:1: invalid YAML" in r.err
    assert good.exists()


def test_a_crd_with_a_field_of_the_wrong_type_is_named_and_the_others_still_validate(
    xp: Run, tmp_path: Path
) -> None:
    bad_crd = bucket_crd("other.example.org")
    schema = bad_crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    schema["properties"]["spec"]["required"] = "forProvider"  # not an array
    ext = dump(tmp_path / "ext.yaml", bucket_crd(), bad_crd)
    res = dump(tmp_path / "res.yaml", bucket("a"))
    r = xp("validate", str(ext), str(res))
    assert r.code == 1
    assert f"[✓] {GVK}, a validated successfully" in r.out
    assert (
        f"[x] {ext}:33:1: CRD buckets.other.example.org: spec.versions[0].schema.openAPIV3Schema.properties[spec]."
        "required is a string; want an array of strings"
    ) in r.err
    assert "Traceback" not in r.err


def test_json_and_yaml_output(xp: Run, tmp_path: Path) -> None:
    ext = dump(tmp_path / "ext.yaml", bucket_crd())
    res = dump(tmp_path / "res.yaml", bucket("a"), bucket("b", "x"), SECRET)
    r = xp("validate", "-o", "json", str(ext), str(res))
    assert r.code == 1
    data = json.loads(r.out)
    assert data["summary"] == {"total": 3, "valid": 1, "invalid": 1, "missingSchemas": 1}
    assert [x["status"] for x in data["resources"]] == ["valid", "invalid", "missingSchema"]
    assert data["resources"][1]["errors"][0] == {
        "type": "schema",
        "field": "spec.forProvider.region",
        "message": 'spec.forProvider.region: Unsupported value: "x": supported values: "eu-west-1", "us-east-1"',
        "value": "x",
    }
    r = xp("validate", "-o", "yaml", str(ext), str(res))
    assert yaml.safe_load(r.out)["summary"]["invalid"] == 1


def test_provider_package_from_a_registry(
    xp: Run, tmp_path: Path, registry_plain: RegistryServer, unique_repo: str
) -> None:
    root = write_package(tmp_path / "provider", "Provider", "provider-s3", [bucket_crd()])
    ref = registry_plain.ref(unique_repo, "v0.1.0")
    digest = push(root, ref, tmp_path)
    ext = dump(
        tmp_path / "ext.yaml",
        {
            "apiVersion": "pkg.crossplane.io/v1",
            "kind": "Provider",
            "metadata": {"name": "p"},
            "spec": {"package": ref},
        },
    )
    res = dump(tmp_path / "res.yaml", bucket("a"), bucket("b", "x"))
    r = xp("validate", "--plain-http", str(ext), str(res))
    assert r.code == 1, r.err
    assert f"reading package {ref}" in r.err
    assert r.out.splitlines()[-1] == "Total 2 resources: 0 missing schemas, 1 success cases, 1 failure cases"
    # a crossplane.yaml meta depending on the exact digest
    meta = dump(
        tmp_path / "crossplane.yaml",
        {
            "apiVersion": "meta.pkg.crossplane.io/v1",
            "kind": "Configuration",
            "metadata": {"name": "c"},
            "spec": {"dependsOn": [{"provider": ref.rsplit(":", 1)[0], "version": digest}]},
        },
    )
    r = xp("validate", "--plain-http", str(meta), str(res))
    assert r.code == 1, r.err
    assert f"reading package {ref.rsplit(':', 1)[0]}@{digest}" in r.err
    assert r.out.splitlines()[-1] == "Total 2 resources: 0 missing schemas, 1 success cases, 1 failure cases"


def test_unreachable_package_says_which_and_why(
    xp: Run, tmp_path: Path, registry_plain: RegistryServer
) -> None:
    ref = registry_plain.ref("t/does-not-exist", "v1.0.0")
    ext = dump(
        tmp_path / "ext.yaml",
        {
            "apiVersion": "pkg.crossplane.io/v1",
            "kind": "Function",
            "metadata": {"name": "f"},
            "spec": {"package": ref},
        },
    )
    res = dump(tmp_path / "res.yaml", bucket("a"))
    r = xp("validate", "--plain-http", str(ext), str(res))
    assert r.code == 1
    assert f"cannot read package {ref} (Function/f)" in r.err
    assert "[!] could not find CRD/XRD for: s3.example.org/v1beta1, Kind=Bucket" in r.out


def test_private_package_behind_a_login(
    xp: Run, tmp_path: Path, registry_basic: RegistryServer, unique_repo: str
) -> None:
    from xplane.oci import Credentials

    root = write_package(tmp_path / "provider", "Provider", "provider-s3", [bucket_crd()])
    ref = registry_basic.ref(unique_repo, "v0.1.0")
    push(root, ref, tmp_path, creds=Credentials(registry_basic.username, registry_basic.password))
    ext = dump(
        tmp_path / "ext.yaml",
        {
            "apiVersion": "pkg.crossplane.io/v1",
            "kind": "Provider",
            "metadata": {"name": "p"},
            "spec": {"package": ref},
        },
    )
    res = dump(tmp_path / "res.yaml", bucket("a"))
    r = xp("validate", "--plain-http", str(ext), str(res))
    assert r.code == 1
    assert f"cannot read package {ref} (Provider/p)" in r.err
    r = xp(
        "validate",
        "--plain-http",
        "-u",
        registry_basic.username,
        "--password-stdin",
        str(ext),
        str(res),
        stdin=registry_basic.password + "\n",
    )
    assert r.code == 0, r.err
    assert r.out.splitlines() == [
        f"[✓] {GVK}, a validated successfully",
        "Total 1 resources: 0 missing schemas, 1 success cases, 0 failure cases",
    ]


def test_render_output_piped_in_names_composed_resources_by_annotation(xp: Run, tmp_path: Path) -> None:
    ext = dump(tmp_path / "ext.yaml", bucket_crd())
    composed = bucket("", "x")
    composed["metadata"] = {
        "generateName": "xr-",
        "annotations": {"crossplane.io/composition-resource-name": "bucket"},
    }
    rendered = yaml.safe_dump_all([bucket("xr-bucket"), composed], sort_keys=False)
    r = xp("validate", str(ext), "-", stdin=rendered)
    assert r.code == 1
    assert r.out.splitlines() == [
        f"[✓] {GVK}, xr-bucket validated successfully",
        f'[x] schema validation error {GVK}, bucket : spec.forProvider.region: Unsupported value: "x": '
        'supported values: "eu-west-1", "us-east-1"',
        "Total 2 resources: 0 missing schemas, 1 success cases, 1 failure cases",
    ]


def composition(name: str, **step: Any) -> dict[str, Any]:
    return {
        "apiVersion": "apiextensions.crossplane.io/v1",
        "kind": "Composition",
        "metadata": {"name": name},
        "spec": {
            "compositeTypeRef": {"apiVersion": "example.org/v1alpha1", "kind": "XNetwork"},
            "mode": "Pipeline",
            "pipeline": [{"step": "a", "functionRef": {"name": "function-a"}, **step}],
        },
    }


@pytest.mark.parametrize("version", ["v1.20.11", "v2.2.4", "v2.3.4", None])
def test_crossplane_kinds_validate_against_the_shipped_crds(
    xp: Run, tmp_path: Path, version: str | None
) -> None:
    ext = dump(tmp_path / "ext.yaml", bucket_crd())
    res = dump(tmp_path / "res.yaml", composition("good"), composition("bad", colour="red"))
    flags = ["--crossplane-version", version] if version else []
    r = xp("validate", *flags, str(ext), str(res))
    assert r.code == 1, r.err
    gvk = "apiextensions.crossplane.io/v1, Kind=Composition"
    assert r.out.splitlines() == [
        f"[✓] {gvk}, good validated successfully",
        f'[x] schema validation error {gvk}, bad : spec.pipeline[0].colour: Invalid value: "colour": '
        'unknown field: "colour"',
        "Total 2 resources: 0 missing schemas, 1 success cases, 1 failure cases",
    ]


def test_an_unshipped_crossplane_version_is_a_usage_error(xp: Run, tmp_path: Path) -> None:
    ext = dump(tmp_path / "ext.yaml", bucket_crd())
    res = dump(tmp_path / "res.yaml", composition("good"))
    r = xp("validate", "--crossplane-version", "v1.9.0", str(ext), str(res))
    assert r.code == 2
    assert "shipped: v1.20.11, v2.2.4, v2.3.4" in r.err


def regional_crd(regions: list[str]) -> dict[str, Any]:
    crd = bucket_crd()
    schema = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    schema["properties"]["spec"]["properties"]["forProvider"]["properties"]["region"]["enum"] = regions
    return crd


def push_provider(tmp_path: Path, registry: RegistryServer, repo: str, tag: str, regions: list[str]) -> str:
    """A provider whose Bucket CRD accepts ``regions`` (so a run shows which version it read)."""
    root = write_package(tmp_path / f"provider-{tag}", "Provider", "provider-s3", [regional_crd(regions)])
    return push(root, registry.ref(repo, tag), tmp_path)


def meta_configuration(tmp_path: Path, *deps: dict[str, Any]) -> Path:
    return dump(
        tmp_path / "crossplane.yaml",
        {
            "apiVersion": "meta.pkg.crossplane.io/v1",
            "kind": "Configuration",
            "metadata": {"name": "app"},
            "spec": {"dependsOn": list(deps)},
        },
    )


def test_depends_on_ranges_resolve_over_the_whole_graph(
    xp: Run, tmp_path: Path, registry_plain: RegistryServer, unique_repo: str
) -> None:
    provider = f"{registry_plain.host}/{unique_repo}/provider-s3"
    platform = f"{registry_plain.host}/{unique_repo}/platform"
    push_provider(tmp_path, registry_plain, f"{unique_repo}/provider-s3", "v1.0.0", ["eu-west-1"])
    push_provider(tmp_path, registry_plain, f"{unique_repo}/provider-s3", "v1.1.0", ["eu-west-1", "mars-1"])
    v2 = push_provider(tmp_path, registry_plain, f"{unique_repo}/provider-s3", "v2.0.0", ["venus-1"])
    root = write_package(
        tmp_path / "platform",
        "Configuration",
        "platform",
        depends_on=[{"provider": provider, "version": "<v2.0.0"}],
    )
    push(root, f"{platform}:v0.1.0", tmp_path)
    res = dump(tmp_path / "res.yaml", bucket("a", "mars-1"))
    # the app wants >=v1.0.0, the platform it depends on <v2.0.0: the highest tag both accept
    meta = meta_configuration(
        tmp_path,
        {"provider": provider, "version": ">=v1.0.0"},
        {"configuration": platform, "version": ">=v0.1.0"},
    )
    r = xp("validate", "--plain-http", str(meta), str(res))
    assert r.code == 0, r.err
    assert f"reading package {provider}:v1.1.0" in r.err and f"{provider}:v2.0.0" not in r.err
    # a digest pins exactly
    meta = meta_configuration(tmp_path, {"provider": provider, "version": v2})
    r = xp("validate", "--plain-http", str(meta), str(res))
    assert r.code == 1 and f"reading package {provider}@{v2}" in r.err
    assert 'Unsupported value: "mars-1": supported values: "venus-1"' in r.out
    # nothing satisfies both: the resolver's message names who wants what
    meta = meta_configuration(
        tmp_path,
        {"provider": provider, "version": ">=v2.0.0"},
        {"configuration": platform, "version": "v0.1.0"},
    )
    r = xp("validate", "--plain-http", str(meta), str(res))
    assert r.code == 1
    assert "[x] cannot resolve dependencies: provider-s3: Configuration/app requires >=v2.0.0, " in r.err
    assert "platform@v0.1.0 requires <v2.0.0; no version satisfies both" in r.err
    assert "(available: v1.0.0, v1.1.0, v2.0.0)" in r.err


def test_update_cache_resolves_ranges_against_the_registry_again(
    xp: Run, tmp_path: Path, registry_plain: RegistryServer, unique_repo: str
) -> None:
    provider = f"{registry_plain.host}/{unique_repo}"
    push_provider(tmp_path, registry_plain, unique_repo, "v1.0.0", ["eu-west-1"])
    meta = meta_configuration(tmp_path, {"provider": provider, "version": ">=v1.0.0"})
    res = dump(tmp_path / "res.yaml", bucket("a", "mars-1"))
    r = xp("validate", "--plain-http", str(meta), str(res))
    assert r.code == 1 and f"reading package {provider}:v1.0.0" in r.err
    push_provider(tmp_path, registry_plain, unique_repo, "v1.1.0", ["eu-west-1", "mars-1"])
    # offline first: the cached v1.0.0 still satisfies the range
    r = xp("validate", "--plain-http", str(meta), str(res))
    assert r.code == 1 and f"reading package {provider}:v1.0.0" in r.err
    r = xp("validate", "--plain-http", "--update-cache", str(meta), str(res))
    assert r.code == 0, r.err
    assert f"reading package {provider}:v1.1.0" in r.err


def test_installed_packages_of_the_control_plane(
    xp: Run, tmp_path: Path, registry_plain: RegistryServer, unique_repo: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tests.pkg.support import composition as pkg_composition
    from tests.pkg.support import xrd

    config = tmp_path / "xplane-config.yaml"
    config.write_text(json.dumps({"registries": {registry_plain.host: {"plainHTTP": True}}}))
    monkeypatch.setenv("XPLANE_CONFIG", str(config))
    home = tmp_path / "state"
    root = write_package(
        tmp_path / "platform",
        "Configuration",
        "platform",
        [xrd("XNetwork"), pkg_composition("xnetwork-default", "XNetwork")],
    )
    ref = registry_plain.ref(unique_repo, "v1.0.0")
    push(root, ref, tmp_path)
    r = xp("xpkg", "install", "configuration", ref, "platform", "--home", str(home))
    assert r.code == 0, r.err
    xr = {"apiVersion": "example.org/v1", "kind": "XNetwork", "metadata": {"name": "net"}, "spec": {}}
    bad = {**xr, "metadata": {"name": "bad"}, "spec": {"colour": "red"}}
    r = xp("validate", "--installed", "--home", str(home), "-", stdin=yaml.safe_dump_all([xr, bad]))
    gvk = "example.org/v1, Kind=XNetwork"
    assert r.code == 1, r.out + r.err
    assert r.out.splitlines() == [
        f"[✓] {gvk}, net validated successfully",
        f'[x] schema validation error {gvk}, bad : spec.colour: Invalid value: "colour": unknown field: "colour"',
        "Total 2 resources: 0 missing schemas, 1 success cases, 1 failure cases",
    ]
    # combined with EXTENSIONS
    ext = dump(tmp_path / "ext.yaml", bucket_crd())
    r = xp(
        "validate",
        "--installed",
        "--home",
        str(home),
        str(ext),
        "-",
        stdin=yaml.safe_dump_all([xr, bucket("b")]),
    )
    assert r.code == 0, r.err
    assert "Total 2 resources: 0 missing schemas, 2 success cases, 0 failure cases" in r.out
    # no state: a usage error; and RESOURCES alone needs --installed
    assert xp("validate", "--installed", "--home", str(tmp_path / "none"), "-", stdin="").code == 2
    assert xp("validate", str(ext)).code == 2
