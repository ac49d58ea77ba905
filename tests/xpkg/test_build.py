"""``xpkg build``: discovery, lint, package.yaml, layers, config labels, the docker-save file, runtime bases.

Helpers here (``copy_fixture``, ``build``, ``runtime_tarball``, ``xpkg_members``) are shared by the
other xpkg test modules.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import shutil
import tarfile
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pytest

from xplane.errors import XplaneError
from xplane.oci.archive import load_archive
from xplane.oci.cache import ImageCache
from xplane.oci.reference import friendly_id
from xplane.xpkg.build import BuildError, BuildOptions, BuiltPackage, build_package
from xplane.xpkg.discover import FILE_SEPARATOR
from xplane.xpkg.errors import LintError, PackageError, YAMLError
from xplane.xpkg.yaml import load_all, load_file_documents

FIXTURES = Path(__file__).parent / "fixtures"
DOCKER_LAYER = "application/vnd.docker.image.rootfs.diff.tar.gzip"


def sha(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def copy_fixture(tmp_path: Path, name: str, dest: str | None = None) -> Path:
    """A writable copy of ``fixtures/<name>`` (its package root; ``examples/`` for a Configuration)."""
    target = tmp_path / (dest or name)
    shutil.copytree(FIXTURES / name, target)
    return target / "package" if (target / "package").is_dir() else target


def build(root: Path, examples: Path | None = None, **kw: Any) -> BuiltPackage:
    """Build the package at ``root`` (examples default to ``root/examples``)."""
    return build_package(BuildOptions(package_root=root, examples_root=examples or root / "examples", **kw))


def xpkg_members(path: Path) -> dict[str, tuple[tarfile.TarInfo, bytes]]:
    """Every entry of a docker-save tarball, in order: name -> (info, bytes)."""
    out: dict[str, tuple[tarfile.TarInfo, bytes]] = {}
    with tarfile.open(path) as tf:
        for m in tf.getmembers():
            f = tf.extractfile(m)
            out[m.name] = (m, f.read() if f else b"")
    return out


def layer_files(blob: bytes) -> dict[str, tuple[tarfile.TarInfo, bytes]]:
    """The entries of a gzip layer blob."""
    out: dict[str, tuple[tarfile.TarInfo, bytes]] = {}
    with tarfile.open(fileobj=io.BytesIO(gzip.decompress(blob))) as tf:
        for m in tf.getmembers():
            f = tf.extractfile(m)
            out[m.name] = (m, f.read() if f else b"")
    return out


def tar_of(files: Mapping[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tf:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size, info.mode, info.mtime = len(data), 0o755, 1700000000
            tf.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def runtime_tarball(
    path: Path,
    *,
    fmt: str = "docker",
    arch: str = "amd64",
    layers: Sequence[Mapping[str, bytes]] = (
        {"usr/bin/fn": b"#!/bin/sh\necho fn\n"},
        {"etc/fn.conf": b"x=1\n"},
    ),
) -> dict[str, Any]:
    """Write a runtime image (entrypoint, env, labels) as a docker-save or OCI-archive tarball.

    Returns ``{"config": dict, "layers": [digests], "diff_ids": [...]}`` to compare against.
    """
    blobs = [gzip.compress(tar_of(files), mtime=0) for files in layers]
    diff_ids = [sha(tar_of(files)) for files in layers]
    config = {
        "architecture": arch,
        "os": "linux",
        "config": {
            "Entrypoint": ["/usr/bin/fn"],
            "Cmd": ["--debug"],
            "Env": ["PATH=/usr/bin", "FN_MODE=serve"],
            "User": "65532",
            "ExposedPorts": {"9443/tcp": {}},
            "Labels": {"org.opencontainers.image.title": "runtime"},
        },
        "rootfs": {"type": "layers", "diff_ids": diff_ids},
        "history": [{"created_by": "COPY"} for _ in layers],
    }
    cfg = json.dumps(config, sort_keys=True).encode()
    entries: list[tuple[str, bytes]] = []
    if fmt == "docker":
        for b in blobs:
            entries.append((sha(b)[7:] + ".tar.gz", b))
        entries.insert(0, (sha(cfg)[7:] + ".json", cfg))
        manifest = [
            {
                "Config": sha(cfg)[7:] + ".json",
                "RepoTags": ["runtime:latest"],
                "Layers": [e[0] for e in entries[1:]],
            }
        ]
        entries.append(("manifest.json", json.dumps(manifest).encode()))
    else:
        oci_manifest = json.dumps(
            {
                "schemaVersion": 2,
                "mediaType": "application/vnd.oci.image.manifest.v1+json",
                "config": {
                    "mediaType": "application/vnd.oci.image.config.v1+json",
                    "digest": sha(cfg),
                    "size": len(cfg),
                },
                "layers": [
                    {
                        "mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
                        "digest": sha(b),
                        "size": len(b),
                    }
                    for b in blobs
                ],
            }
        ).encode()
        index = json.dumps(
            {
                "schemaVersion": 2,
                "manifests": [
                    {
                        "mediaType": "application/vnd.oci.image.manifest.v1+json",
                        "digest": sha(oci_manifest),
                        "size": len(oci_manifest),
                        "annotations": {"org.opencontainers.image.ref.name": "latest"},
                    }
                ],
            }
        ).encode()
        entries.append(("oci-layout", b'{"imageLayoutVersion":"1.0.0"}'))
        entries.append(("index.json", index))
        for b in (cfg, oci_manifest, *blobs):
            entries.append(("blobs/sha256/" + sha(b)[7:], b))
    with tarfile.open(path, "w") as tf:
        for name, data in entries:
            info = tarfile.TarInfo(name)
            info.size, info.mode = len(data), 0o644
            tf.addfile(info, io.BytesIO(data))
    return {"config": config, "layers": [sha(b) for b in blobs], "diff_ids": diff_ids}


# --- the docker-save layout --------------------------------------------------------------------------


def test_configuration_builds_into_the_docker_save_layout(tmp_path: Path) -> None:
    root = copy_fixture(tmp_path, "configuration")
    built = build(root)
    out = built.write(tmp_path / "out.xpkg")
    members = xpkg_members(out)
    cfg_hex = sha(built.config)[7:]
    layer_names = [n for n in members if n.endswith(".tar.gz")]
    assert list(members) == [f"sha256:{cfg_hex}", *layer_names, "manifest.json"]
    assert len(layer_names) == 2
    for info, _ in members.values():
        assert info.isreg() and info.mode == 0o644
    assert members[f"sha256:{cfg_hex}"][1] == built.config
    manifest = json.loads(members["manifest.json"][1])
    assert manifest == [{"Config": f"sha256:{cfg_hex}", "RepoTags": None, "Layers": layer_names}]
    for name in layer_names:  # file name = compressed digest hex
        assert sha(members[name][1])[7:] + ".tar.gz" == name
    assert not list(tmp_path.glob(".out.xpkg.tmp-*"))
    # the manifest digest we report is the one a reader reconstructs from the tarball
    image = load_archive(out, "example.org/x/cfg:v1", cache=ImageCache(tmp_path / "cache"))
    assert image.manifest_digest == built.digest
    assert json.loads(built.manifest)["mediaType"] == "application/vnd.docker.distribution.manifest.v2+json"


def test_base_and_upbound_layers_are_single_file_tars_with_labels(tmp_path: Path) -> None:
    root = copy_fixture(tmp_path, "configuration")
    built = build(root)
    manifest = json.loads(built.manifest)
    base_desc, ex_desc = manifest["layers"]
    assert base_desc["mediaType"] == ex_desc["mediaType"] == DOCKER_LAYER
    assert "annotations" not in base_desc  # annotations are added by push, from the labels
    base = layer_files(built.blobs.blobs[base_desc["digest"]])
    ex = layer_files(built.blobs.blobs[ex_desc["digest"]])
    assert list(base) == ["package.yaml"] and list(ex) == [".up/examples.yaml"]
    for info, _ in (*base.values(), *ex.values()):
        assert info.isreg() and info.mode == 0o644 and info.mtime == 0 and info.uid == info.gid == 0
    assert base["package.yaml"][1] == built.package_yaml
    # examples: the raw stream with upstream's separators
    raw = (root / "examples" / "network.yaml").read_bytes()
    assert ex[".up/examples.yaml"][1] == raw + FILE_SEPARATOR == built.examples_yaml
    config = json.loads(built.config)
    assert config["config"]["Labels"] == {
        f"io.crossplane.xpkg:{base_desc['digest']}": "base",
        f"io.crossplane.xpkg:{ex_desc['digest']}": "upbound",
    }
    assert config["rootfs"]["diff_ids"] == [
        sha(gzip.decompress(built.blobs.blobs[d["digest"]])) for d in (base_desc, ex_desc)
    ]
    assert config["architecture"] == "" and config["os"] == ""


def test_package_yaml_has_the_meta_first_then_objects_in_walk_order(tmp_path: Path) -> None:
    root = copy_fixture(tmp_path, "configuration")
    built = build(root)
    assert built.package_yaml.startswith(b"---\n")
    docs = load_all(built.package_yaml)
    got = [(d["kind"], d["metadata"]["name"]) for d in docs]
    expected: list[tuple[str, str]] = []
    for f in built.files:
        expected += [(loc.doc["kind"], loc.doc["metadata"]["name"]) for loc in load_file_documents(f)[0]]
    meta = ("Configuration", "platform-ref-network")
    assert got[0] == meta and got[1:] == [e for e in expected if e != meta]
    assert [f.relative_to(root.resolve()).as_posix() for f in built.files] == [
        "apis/xnetwork/composition.yaml",
        "apis/xnetwork/definition.yaml",
        "crossplane.yaml",
        "operations/rotate.yaml",
    ]
    assert built.object_count == 5
    # objects are re-serialised, not copied: the meta's comment-free YAML has sorted keys
    assert docs[0] == load_file_documents(root / "crossplane.yaml")[0][0].doc


TRICKY = """\
apiVersion: apiextensions.crossplane.io/v1
kind: Composition
metadata:
  name: tricky.example.org
  annotations:
    yes-string: "y"
    on-string: "on"
    octal-string: "012"
    float-string: "1e3"
    sexagesimal: 1:20
    date: 2024-01-01
    quoted-date: "2024-01-01"
    null-string: "null"
    tilde: "~"
    true-string: "True"
    hex-string: "0x1F"
    dot-inf: ".inf"
    empty: ""
    merge: "<<"
    spaces: " padded "
    multiline: |
      line one
      line two
spec:
  compositeTypeRef:
    apiVersion: example.org/v1alpha1
    kind: XTricky
  mode: Pipeline
  pipeline:
    - step: s
      functionRef:
        name: fn
      input:
        apiVersion: x.fn.crossplane.io/v1
        kind: Input
        bool-y: y
        bool-on: on
        octal: 012
        float: 1e3
        big: 12345678901234567890
        list: ["n", "off", "+1", "1_000", "0b101"]
"""


def test_values_survive_re_serialisation(tmp_path: Path) -> None:
    root = copy_fixture(tmp_path, "configuration")
    (root / "apis" / "tricky.yaml").write_text(TRICKY)
    built = build(root)
    original = load_all(TRICKY)[0]
    back = [d for d in load_all(built.package_yaml) if d["metadata"]["name"] == "tricky.example.org"]
    assert back == [original]
    ann = back[0]["metadata"]["annotations"]
    for key, want in {
        "yes-string": "y",
        "on-string": "on",
        "octal-string": "012",
        "float-string": "1e3",
        "sexagesimal": "1:20",
        "date": "2024-01-01",
        "quoted-date": "2024-01-01",
        "null-string": "null",
        "tilde": "~",
        "true-string": "True",
        "hex-string": "0x1F",
        "dot-inf": ".inf",
        "empty": "",
        "merge": "<<",
        "spaces": " padded ",
        "multiline": "line one\nline two\n",
    }.items():
        assert ann[key] == want and isinstance(ann[key], str), key
    inp = back[0]["spec"]["pipeline"][0]["input"]
    assert inp["bool-y"] is True and inp["bool-on"] is True  # YAML 1.1, as Kubernetes reads them
    assert inp["octal"] == 10 and inp["float"] == 1000 and inp["big"] == 12345678901234567890
    assert inp["list"] == ["n", "off", "+1", "1_000", "0b101"]


# --- reproducibility and names ------------------------------------------------------------------------


def test_same_inputs_give_the_same_digest_anywhere(tmp_path: Path) -> None:
    a = build(copy_fixture(tmp_path, "configuration", "a"))
    b_root = copy_fixture(tmp_path, "configuration", "elsewhere/b")
    for p in b_root.rglob("*.yaml"):  # different mtimes must not matter
        os.utime(p, (time.time() - 1000, time.time() - 1000))
    b = build(b_root)
    assert a.digest == b.digest and a.manifest == b.manifest and a.config == b.config
    pa, pb = a.write(tmp_path / "a.xpkg"), b.write(tmp_path / "b.xpkg")
    assert pa.read_bytes() == pb.read_bytes()
    (b_root / "apis" / "xnetwork" / "composition.yaml").write_text(
        (b_root / "apis" / "xnetwork" / "composition.yaml").read_text().replace("10.0.0.0/16", "10.1.0.0/16")
    )
    assert build(b_root).digest != a.digest


def test_default_file_name_is_friendly_id_of_name_and_digest(tmp_path: Path) -> None:
    built = build(copy_fixture(tmp_path, "configuration"))
    hexd = built.digest.split(":")[1]
    assert built.default_file_name() == f"platform-ref-network-{hexd[:12]}.xpkg"
    assert built.default_file_name() == friendly_id("platform-ref-network", hexd) + ".xpkg"


def test_long_meta_names_are_truncated_in_the_file_name(tmp_path: Path) -> None:
    root = copy_fixture(tmp_path, "provider")
    meta = root / "crossplane.yaml"
    long_name = "provider-" + "a" * 60
    meta.write_text(meta.read_text().replace("name: provider-nop", f"name: {long_name}", 1))
    built = build(root)
    assert built.meta.name == long_name
    assert built.default_file_name() == f"{long_name[:50]}-{built.digest[7:19]}.xpkg"


# --- discovery inside build ---------------------------------------------------------------------------


def test_missing_examples_root_gives_one_layer_and_an_empty_one_an_empty_file(tmp_path: Path) -> None:
    root = copy_fixture(tmp_path, "configuration")
    shutil.rmtree(root / "examples")
    one = build(root)
    assert one.examples_yaml is None and len(json.loads(one.manifest)["layers"]) == 1
    assert len(json.loads(one.config)["config"]["Labels"]) == 1
    (root / "examples").mkdir()
    two = build(root)
    assert two.examples_yaml == b"" and len(json.loads(two.manifest)["layers"]) == 2


def test_examples_are_excluded_from_the_package_by_substring_even_when_missing(tmp_path: Path) -> None:
    root = copy_fixture(tmp_path, "configuration")
    shutil.rmtree(root / "examples")
    bad = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: cm\n"
    (root / "examples-old").mkdir()
    (root / "examples-old" / "cm.yaml").write_text(bad)  # would fail lint if it were read
    built = build(root)
    assert all("examples-old" not in str(f) for f in built.files)


def test_ignore_and_examples_ignore(tmp_path: Path) -> None:
    root = copy_fixture(tmp_path, "configuration")
    (root / "apis" / "cm.yaml").write_text("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: cm\n")
    with pytest.raises(LintError):
        build(root)
    (root / "examples" / "broken.yaml").write_text("a: [\n")
    built_err = None
    try:
        build(root, ignore=["apis/cm.yaml"])
    except YAMLError as e:
        built_err = e
    assert built_err is not None and built_err.file is not None and built_err.file.endswith("broken.yaml")
    built = build(root, ignore=["apis/*.yaml"], examples_ignore=["broken.*"])
    assert built.examples_yaml is not None and b"a: [" not in built.examples_yaml
    assert b"XNetwork" in built.examples_yaml


def test_not_a_directory(tmp_path: Path) -> None:
    with pytest.raises(BuildError, match="is not a directory"):
        build(tmp_path / "nope")


# --- failures -----------------------------------------------------------------------------------------


def test_no_meta_object_fails(tmp_path: Path) -> None:
    root = copy_fixture(tmp_path, "configuration")
    (root / "crossplane.yaml").unlink()
    with pytest.raises(PackageError, match="not exactly one package meta type"):
        build(root)


def test_two_meta_objects_fail_naming_the_second(tmp_path: Path) -> None:
    root = copy_fixture(tmp_path, "configuration")
    extra = root / "operations" / "meta2.yaml"
    extra.write_text(
        "---\n# another\napiVersion: meta.pkg.crossplane.io/v1\nkind: Provider\nmetadata:\n  name: p2\n"
    )
    with pytest.raises(LintError) as e:
        build(root)
    msg = str(e.value)
    assert "not exactly one package meta type" in msg
    assert f"{extra.resolve()}:3" in msg and "Provider/p2" in msg


@pytest.mark.parametrize(
    ("fixture", "rel", "doc", "message"),
    [
        (
            "configuration",
            "apis/zz.yaml",
            "# leading comment\n\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: cm\n",
            'no kind "ConfigMap" is registered for version "v1"',
        ),
        (
            "provider",
            "crds/zz.yaml",
            "apiVersion: apiextensions.crossplane.io/v1\nkind: Composition\nmetadata:\n  name: comp\nspec: {}\n",
            "object is not a CRD",
        ),
        (
            "function",
            "input/zz.yaml",
            "apiVersion: admissionregistration.k8s.io/v1\nkind: ValidatingWebhookConfiguration\n"
            "metadata:\n  name: hook\n",
            "object is not a CRD",
        ),
    ],
)
def test_lint_errors_name_file_line_and_object(
    tmp_path: Path, fixture: str, rel: str, doc: str, message: str
) -> None:
    root = copy_fixture(tmp_path, fixture)
    path = root / rel
    path.write_text("---\n" + doc)
    with pytest.raises(LintError) as e:
        build(root)
    msg = str(e.value)
    kind = next(ln.split(": ")[1] for ln in doc.splitlines() if ln.startswith("kind:"))
    name = next(ln.split(": ")[1] for ln in doc.splitlines() if ln.startswith("  name:"))
    first = 2 + next(i for i, ln in enumerate(doc.splitlines()) if ln and not ln.startswith("#"))
    assert f"{path.resolve()}:{first}" in msg, msg
    assert f"{kind}/{name}" in msg and message in msg


def test_wrong_meta_kind_for_the_content(tmp_path: Path) -> None:
    root = copy_fixture(tmp_path, "provider")
    meta = root / "crossplane.yaml"
    text = meta.read_text()
    head, _, rest = text.partition("kind: Provider")
    head = head.replace("meta.pkg.crossplane.io/v1alpha1", "meta.pkg.crossplane.io/v1beta1")
    meta.write_text(head + "kind: Function" + rest)
    with pytest.raises(LintError) as e:  # a Function may hold CRDs, but not webhook configurations
        build(root)
    assert "object is not a CRD" in str(e.value) and "ValidatingWebhookConfiguration/" in str(e.value)


def test_bad_yaml_is_located(tmp_path: Path) -> None:
    root = copy_fixture(tmp_path, "configuration")
    (root / "apis" / "bad.yaml").write_text("apiVersion: v1\nkind: [\n")
    with pytest.raises(YAMLError) as e:
        build(root)
    assert e.value.file is not None and e.value.file.endswith("bad.yaml") and e.value.line is not None


def test_function_and_provider_fixtures_build(tmp_path: Path) -> None:
    for name in ("function", "provider"):
        built = build(copy_fixture(tmp_path, name))
        assert built.lint.ok and built.examples_yaml is None
        kinds = {d["kind"] for d in load_all(built.package_yaml)[1:]}
        assert "CustomResourceDefinition" in kinds


# --- a runtime image underneath ----------------------------------------------------------------------


@pytest.mark.parametrize("fmt", ["docker", "oci"])
def test_embed_runtime_image_tarball(tmp_path: Path, fmt: str) -> None:
    tarball = tmp_path / f"runtime-{fmt}.tar"
    rt = runtime_tarball(tarball, fmt=fmt, arch="arm64")
    root = copy_fixture(tmp_path, "function")
    cache = ImageCache(tmp_path / "cache")
    built = build(root, runtime_image_tarball=tarball, cache=cache)
    manifest = json.loads(built.manifest)
    digests = [d["digest"] for d in manifest["layers"]]
    assert digests[:2] == rt["layers"] and len(digests) == 3  # runtime layers first, package on top
    assert all(d["mediaType"] == DOCKER_LAYER for d in manifest["layers"])
    cfg = json.loads(built.config)
    want = rt["config"]["config"]
    for key in ("Entrypoint", "Cmd", "Env", "User", "ExposedPorts"):
        assert cfg["config"][key] == want[key]
    assert cfg["config"]["Labels"] == {
        "org.opencontainers.image.title": "runtime",
        f"io.crossplane.xpkg:{digests[2]}": "base",
    }
    assert cfg["architecture"] == "arm64" and cfg["os"] == "linux"
    assert cfg["rootfs"]["diff_ids"][:2] == rt["diff_ids"] and len(cfg["rootfs"]["diff_ids"]) == 3
    out = built.write(tmp_path / "fn.xpkg")
    members = xpkg_members(out)
    assert json.loads(members["manifest.json"][1])[0]["Layers"] == [d[7:] + ".tar.gz" for d in digests]
    assert sha(members[digests[0][7:] + ".tar.gz"][1]) == digests[0]  # runtime blobs copied exactly
    # the same inputs on the same base: the same digest
    assert build(root, runtime_image_tarball=tarball, cache=cache).digest == built.digest


def test_embed_runtime_image_tarball_that_is_missing_or_not_an_image(tmp_path: Path) -> None:
    root = copy_fixture(tmp_path, "function")
    with pytest.raises(BuildError, match="does not exist"):
        build(root, runtime_image_tarball=tmp_path / "nope.tar", cache=ImageCache(tmp_path / "c"))
    junk = tmp_path / "junk.tar"
    junk.write_bytes(b"not a tar at all" * 100)
    with pytest.raises(XplaneError):  # from the archive loader
        build(root, runtime_image_tarball=junk, cache=ImageCache(tmp_path / "c"))


def test_embed_a_runtime_image_from_the_cache(tmp_path: Path) -> None:
    from xplane.oci.archive import load_archive

    tarball = tmp_path / "runtime.tar"
    runtime_tarball(tarball, fmt="oci")
    root = copy_fixture(tmp_path, "function")
    cache = ImageCache(tmp_path / "cache")
    image = load_archive(tarball, "example.org/runtime:v1", cache=cache)
    from_image = build(root, runtime_image=image)
    assert from_image.digest == build(root, runtime_image_tarball=tarball, cache=cache).digest
    assert from_image.open_blob(image.layers[0].digest).read()  # runtime layers come from the cache
    with pytest.raises(BuildError, match="not both"):
        build(root, runtime_image=image, runtime_image_tarball=tarball, cache=cache)
