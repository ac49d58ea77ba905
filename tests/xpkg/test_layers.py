"""Package layers, config labels and the manifest, byte for byte as ``crossplane xpkg build`` shapes them."""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import tarfile

from xplane.oci.models import DOCKER_CONFIG, DOCKER_LAYER, DOCKER_MANIFEST, Descriptor
from xplane.xpkg.layers import (
    ANNOTATION_KEY,
    annotate_layers,
    config_bytes,
    empty_config,
    make_layer,
    manifest_bytes,
    package_config,
    single_file_tar,
    xpkg_labels,
)


def sha(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def test_single_file_tar_has_one_regular_0644_entry_with_zero_mtime_and_owner() -> None:
    data = single_file_tar("package.yaml", b"kind: X\n")
    with tarfile.open(fileobj=io.BytesIO(data)) as tf:
        members = tf.getmembers()
        assert [m.name for m in members] == ["package.yaml"]
        m = members[0]
        assert m.isreg() and m.mode == 0o644 and m.mtime == 0 and m.size == 8
        assert (m.uid, m.gid, m.uname, m.gname) == (0, 0, "", "")
        f = tf.extractfile(m)
        assert f is not None and f.read() == b"kind: X\n"


def test_make_layer_gzips_deterministically_with_a_zero_mtime_header() -> None:
    a = make_layer("package.yaml", b"a: 1\n", "base")
    b = make_layer("package.yaml", b"a: 1\n", "base")
    assert a == b
    assert a.blob[:4] == b"\x1f\x8b\x08\x00" and a.blob[4:8] == b"\x00\x00\x00\x00"  # no name, mtime 0
    tar = gzip.decompress(a.blob)
    assert a.digest == sha(a.blob) and a.diff_id == sha(tar)
    assert tar == single_file_tar("package.yaml", b"a: 1\n")
    assert make_layer("package.yaml", b"a: 2\n", "base").digest != a.digest


def test_layer_descriptor_is_docker_and_annotated_only_on_request() -> None:
    layer = make_layer(".up/examples.yaml", b"", "upbound")
    d = layer.descriptor()
    assert d.media_type == DOCKER_LAYER and d.size == len(layer.blob) and not d.annotations
    assert layer.descriptor(annotate=True).annotations == {ANNOTATION_KEY: "upbound"}


def test_package_config_from_scratch_is_ggcr_empty_image_plus_labels() -> None:
    base = make_layer("package.yaml", b"x: 1\n", "base")
    ex = make_layer(".up/examples.yaml", b"y: 2\n", "upbound")
    cfg = package_config(None, [base, ex])
    assert cfg["architecture"] == "" and cfg["os"] == "" and cfg["created"] == "0001-01-01T00:00:00Z"
    assert cfg["rootfs"] == {"type": "layers", "diff_ids": [base.diff_id, ex.diff_id]}
    assert cfg["history"] == [{"created": "0001-01-01T00:00:00Z"}] * 2
    assert cfg["config"]["Labels"] == {
        f"io.crossplane.xpkg:{base.digest}": "base",
        f"io.crossplane.xpkg:{ex.digest}": "upbound",
    }
    assert xpkg_labels(cfg) == {base.digest: "base", ex.digest: "upbound"}
    assert empty_config()["rootfs"]["diff_ids"] == []  # not mutated by package_config


def test_package_config_keeps_a_runtime_base_and_does_not_mutate_it() -> None:
    runtime = {
        "architecture": "arm64",
        "os": "linux",
        "config": {"Entrypoint": ["/fn"], "Env": ["A=1"], "Labels": {"org.example/x": "y"}},
        "rootfs": {"type": "layers", "diff_ids": ["sha256:" + "1" * 64]},
        "history": [{"created_by": "COPY fn /fn"}],
    }
    snapshot = json.dumps(runtime, sort_keys=True)
    layer = make_layer("package.yaml", b"x: 1\n", "base")
    cfg = package_config(runtime, [layer])
    assert json.dumps(runtime, sort_keys=True) == snapshot
    assert cfg["architecture"] == "arm64" and cfg["config"]["Entrypoint"] == ["/fn"]
    assert cfg["config"]["Env"] == ["A=1"]
    assert cfg["config"]["Labels"] == {"org.example/x": "y", f"io.crossplane.xpkg:{layer.digest}": "base"}
    assert cfg["rootfs"]["diff_ids"] == ["sha256:" + "1" * 64, layer.diff_id]
    assert len(cfg["history"]) == 2


def test_config_bytes_are_canonical() -> None:
    assert config_bytes({"b": 1, "a": {"d": 2, "c": "é"}}) == '{"a":{"c":"é","d":2},"b":1}'.encode()


def test_annotate_layers_uses_config_labels_like_crossplane_push() -> None:
    base = make_layer("package.yaml", b"x: 1\n", "base")
    other = Descriptor(DOCKER_LAYER, "sha256:" + "2" * 64, 10, {"keep": "me"})
    cfg = package_config(None, [base])
    out = annotate_layers([other, base.descriptor()], cfg)
    assert out[0] == other
    assert out[1].annotations == {ANNOTATION_KEY: "base"} and out[1].digest == base.digest
    assert annotate_layers([base.descriptor()], empty_config())[0].annotations == {}


def test_manifest_is_docker_schema_2() -> None:
    layer = make_layer("package.yaml", b"x: 1\n", "base")
    cfg = config_bytes(package_config(None, [layer]))
    m = json.loads(manifest_bytes(cfg, [layer.descriptor()]))
    assert m["schemaVersion"] == 2 and m["mediaType"] == DOCKER_MANIFEST
    assert m["config"] == {"mediaType": DOCKER_CONFIG, "size": len(cfg), "digest": sha(cfg)}
    assert m["layers"] == [{"mediaType": DOCKER_LAYER, "size": len(layer.blob), "digest": layer.digest}]
