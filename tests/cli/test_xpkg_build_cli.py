"""``xp xpkg build|push|inspect|extract|init``: flags, output, exit codes, end to end against a registry."""

from __future__ import annotations

import gzip
import json
import os
import shutil
import subprocess
import sys
import tarfile
from collections.abc import Callable
from pathlib import Path

import click
import pytest
import yaml

from tests.support.registry import RegistryServer
from tests.support.skopeo import Skopeo
from xplane.cli.main import cli
from xplane.cli.output import run_cli

FIXTURES = Path(__file__).parents[1] / "xpkg" / "fixtures"


class Result:
    """What one ``xp`` run gave."""

    def __init__(self, code: int, out: str, err: str) -> None:
        self.code, self.out, self.err = code, out, err


Run = Callable[..., Result]


@pytest.fixture
def xp(capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Run:
    """Run ``xp ARGS`` in-process with a private cache, in an empty working directory (so the
    default ``./examples`` is never the repository's); returns (exit code, stdout, stderr)."""
    monkeypatch.setenv("XPLANE_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.delenv("COLUMNS", raising=False)
    (tmp_path / "cwd").mkdir()
    monkeypatch.chdir(tmp_path / "cwd")

    def run(*args: str) -> Result:
        capsys.readouterr()
        code = run_cli(cli, list(args))
        out, err = capsys.readouterr()
        return Result(code, out, err)

    return run


@pytest.fixture
def cfg(tmp_path: Path) -> Path:
    root = tmp_path / "configuration"
    shutil.copytree(FIXTURES / "configuration", root)
    return root


def test_build_in_the_package_root_with_defaults(xp: Run, cfg: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(cfg)
    r = xp("xpkg", "build")
    assert r.code == 0, r.err
    files = list(cfg.glob("*.xpkg"))
    assert len(files) == 1 and files[0].name.startswith("platform-ref-network-")
    digest = r.out.strip().rsplit("(", 1)[1].rstrip(")")
    assert files[0].name == f"platform-ref-network-{digest[7:19]}.xpkg"
    assert r.out.startswith(f"xpkg saved to {files[0].name} (sha256:")
    with tarfile.open(files[0]) as tf:  # default ./examples was found: two layers
        assert len([n for n in tf.getnames() if n.endswith(".tar.gz")]) == 2


def test_build_flags_and_json_output(xp: Run, cfg: Path, tmp_path: Path) -> None:
    out = tmp_path / "out" / "pkg.xpkg"
    out.parent.mkdir()
    r = xp(
        "xpkg", "build", "-f", str(cfg), "-e", str(cfg / "examples"), "--ignore", "operations/*.yaml",
        "--examples-ignore", "nothing*", "-o", str(out), "--format", "json",
    )  # fmt: skip
    assert r.code == 0, r.err
    assert "deprecated" not in r.err
    doc = json.loads(r.out)
    assert doc["file"] == str(out) and out.is_file()
    assert doc["name"] == "platform-ref-network" and doc["kind"] == "Configuration"
    assert doc["objects"] == 3 and len(doc["files"]) == 3  # operations/rotate.yaml ignored
    assert doc["digest"].startswith("sha256:") and doc["warnings"] == []


def test_old_format_spellings_still_work_with_a_deprecation_warning(
    xp: Run, cfg: Path, tmp_path: Path
) -> None:
    # build's "-o" is the package file (as upstream) and its old "--output json" the summary format
    out = tmp_path / "pkg.xpkg"
    r = xp("xpkg", "build", "-f", str(cfg), "-e", str(cfg / "examples"), "-o", str(out), "--output", "json")
    assert r.code == 0, r.err
    assert json.loads(r.out)["file"] == str(out)
    assert "'--output json' is deprecated for 'xp xpkg build'; use '--format json'" in r.err
    r = xp("xpkg", "inspect", str(out), "-o", "yaml")
    assert r.code == 0, r.err
    assert yaml.safe_load(r.out)["kind"] == "Configuration"
    assert "'--output yaml' is deprecated for 'xp xpkg inspect'; use '--format yaml'" in r.err
    r = xp("xpkg", "inspect", str(out), "--format", "json")
    assert r.code == 0 and r.err == "" and json.loads(r.out)["kind"] == "Configuration"


def test_xpkg_commands_never_use_output_for_a_format() -> None:
    # extract's -o/--output is a file (as upstream); no sibling gives the names another meaning
    from xplane.cli.lazy import LazyGroup
    from xplane.cli.main import XPKG_COMMANDS

    group = cli.commands["xpkg"]
    assert isinstance(group, LazyGroup)
    for name in XPKG_COMMANDS:
        command = group.get_command(click.Context(group), name)
        assert command is not None
        for param in command.params:
            if not isinstance(param, click.Option) or param.hidden:
                continue
            if "-o" in param.opts or "--output" in param.opts:
                assert param.name in ("package_file", "out"), (name, param.opts)


def test_build_lint_failure_exits_1_with_located_errors(xp: Run, cfg: Path) -> None:
    (cfg / "apis" / "cm.yaml").write_text("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: cm\n")
    r = xp("xpkg", "build", "-f", str(cfg), "-e", str(cfg / "examples"))
    assert r.code == 1
    assert f"{(cfg / 'apis' / 'cm.yaml').resolve()}:1: ConfigMap/cm:" in r.err
    assert not list(cfg.glob("*.xpkg"))


@pytest.mark.parametrize(("text", "what"), [("- a\n- b\n", "a list"), ("just words\n", "a str scalar")])
def test_build_a_document_that_is_not_a_mapping_is_a_located_lint_error(
    xp: Run, cfg: Path, text: str, what: str
) -> None:
    (cfg / "apis" / "odd.yaml").write_text(text)
    r = xp("xpkg", "build", "-f", str(cfg), "-e", str(cfg / "examples"))
    assert r.code == 1 and "Traceback" not in r.err
    assert f"odd.yaml:1: <no kind>/<no name>: Object 'Kind' is missing: the document is {what}" in r.err
    assert not list(cfg.glob("*.xpkg"))


def test_build_missing_root_is_a_usage_error(xp: Run, tmp_path: Path) -> None:
    r = xp("xpkg", "build", "-f", str(tmp_path / "nope"))
    assert r.code == 2 and "does not exist" in r.err


def test_init_then_build_each_type(xp: Run, tmp_path: Path) -> None:
    for ptype in ("configuration", "provider", "function"):
        target = tmp_path / ptype
        r = xp("xpkg", "init", f"demo-{ptype}", "--type", ptype, "-d", str(target))
        assert r.code == 0, r.err
        hint = r.out.strip().splitlines()[-1]
        assert hint.startswith("build it with: xp xpkg build -f ")
        args = hint.removeprefix("build it with: xp ").split()
        r = xp(*args, "-o", str(tmp_path / f"{ptype}.xpkg"))
        assert r.code == 0, (ptype, r.err)
        assert r.err == ""  # no warnings either
    r = xp("xpkg", "init", "demo-provider", "--type", "provider", "-d", str(tmp_path / "provider"))
    assert r.code == 1 and "already exists" in r.err


def test_push_inspect_extract_end_to_end(
    xp: Run, cfg: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, registry_plain: RegistryServer,
    skopeo: Skopeo, unique_repo: str,
) -> None:  # fmt: skip
    monkeypatch.chdir(cfg)
    assert xp("xpkg", "build").code == 0
    ref = registry_plain.ref(unique_repo, "v1.0.0")
    r = xp("xpkg", "push", ref, "--plain-http", "-a", "org.example/team=platform", "--format", "json")
    assert r.code == 0, r.err
    pushed = json.loads(r.out)
    raw = skopeo("inspect", "--raw", "--tls-verify=false", f"docker://{ref}", check=True).stdout
    manifest = json.loads(raw)
    assert manifest["annotations"] == {"org.example/team": "platform"}
    assert manifest["layers"][0]["annotations"] == {"io.crossplane.xpkg": "base"}
    # inspect the reference in a fresh cache, as JSON and YAML
    monkeypatch.setenv("XPLANE_CACHE_DIR", str(tmp_path / "fresh"))
    r = xp("xpkg", "inspect", ref, "--plain-http", "--format", "json")
    assert r.code == 0, r.err
    doc = json.loads(r.out)
    assert doc["digest"] == pushed["digest"] and doc["name"] == "platform-ref-network"
    assert set(doc) >= {"apiVersion", "kind", "source", "manifestDigest", "dependencies", "objects", "layers"}
    r = xp("xpkg", "inspect", ref, "--format", "yaml", "--pull-policy", "Never")
    assert r.code == 0, r.err
    assert yaml.safe_load(r.out) == doc
    # extract from the reference: the extension is forced to .gz
    r = xp("xpkg", "extract", ref, "--plain-http", "-o", str(tmp_path / "pkg.yaml"))
    assert r.code == 0, r.err
    xpkg = next(cfg.glob("*.xpkg"))
    r2 = xp("xpkg", "extract", "--from-xpkg", str(xpkg), "-o", str(tmp_path / "from-file"))
    assert r2.code == 0, r2.err
    a, b = (tmp_path / "pkg.gz").read_bytes(), (tmp_path / "from-file.gz").read_bytes()
    assert a == b and gzip.decompress(a).startswith(b"---\napiVersion: meta.pkg.crossplane.io/v1\n")
    assert not (tmp_path / "pkg.yaml").exists()


def test_push_with_several_files_and_errors(
    xp: Run,
    cfg: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    registry_plain: RegistryServer,
    unique_repo: str,
) -> None:
    monkeypatch.chdir(tmp_path)
    r = xp("xpkg", "push", registry_plain.ref(unique_repo, "v1"), "--plain-http")
    assert r.code == 1 and "directory does not contain a compiled crossplane package" in r.err
    assert xp("xpkg", "build", "-f", str(cfg), "-e", str(cfg / "examples"), "-o", "a.xpkg").code == 0
    shutil.copy(tmp_path / "a.xpkg", tmp_path / "b.xpkg")
    r = xp("xpkg", "push", registry_plain.ref(unique_repo, "v1"), "--plain-http")
    assert r.code == 1 and "directory contains multiple compiled crossplane packages" in r.err
    r = xp("xpkg", "push", registry_plain.ref(unique_repo, "v1"), "-f", "a.xpkg", "-a", "novalue")
    assert r.code == 1 and 'invalid annotation "novalue": must be in key=value format' in r.err
    r = xp(
        "xpkg",
        "push",
        registry_plain.ref(unique_repo, "v1"),
        "--plain-http",
        "-f",
        "a.xpkg,b.xpkg",
        "-o",
        "json",
    )
    assert r.code == 0, r.err
    doc = json.loads(r.out)
    assert len(doc["images"]) == 2 and doc["images"][0] == doc["images"][1]  # same file twice
    r = xp("xpkg", "push", "no-registry-or-tag", "-f", "a.xpkg")
    assert r.code != 0 and "no-registry-or-tag" in r.err


def test_inspect_table_keeps_digests_whole(
    xp: Run, cfg: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = tmp_path / "p.xpkg"
    assert xp("xpkg", "build", "-f", str(cfg), "-e", str(cfg / "examples"), "-o", str(out)).code == 0
    js = json.loads(xp("xpkg", "inspect", str(out), "--format", "json").out)
    r = xp("xpkg", "inspect", str(out))
    assert r.code == 0, r.err
    assert "…" not in r.out
    for layer in js["layers"]:
        assert layer["digest"] in r.out
    assert f"digest:     {js['digest']}" in r.out
    for dep in js["dependencies"]:
        assert dep["package"] in r.out and dep["version"] in r.out
    # on a narrow terminal rows fold instead of being cut off with an ellipsis
    monkeypatch.setenv("COLUMNS", "60")
    r = xp("xpkg", "inspect", str(out))
    assert r.code == 0 and "…" not in r.out
    joined = "".join(line.strip() for line in r.out.splitlines())
    assert js["layers"][0]["digest"][:40] in joined


def test_extract_needs_exactly_one_source(xp: Run, tmp_path: Path) -> None:
    r = xp("xpkg", "extract")
    assert r.code == 2 and "either a package reference or --from-xpkg" in r.err


def test_xp_process_builds(cfg: Path, tmp_path: Path) -> None:
    env = {**os.environ, "XPLANE_CACHE_DIR": str(tmp_path / "cache")}
    r = subprocess.run(
        [sys.executable, "-m", "xplane.cli.main", "xpkg", "build", "-f", str(cfg), "-e", str(cfg / "examples")],
        capture_output=True, text=True, env=env, timeout=60,
    )  # fmt: skip
    assert r.returncode == 0, r.stderr
    assert len(list(cfg.glob("platform-ref-network-*.xpkg"))) == 1


def test_build_on_a_runtime_tarball_then_inspect(xp: Run, tmp_path: Path) -> None:
    from tests.xpkg.test_build import runtime_tarball

    root = tmp_path / "fn"
    shutil.copytree(FIXTURES / "function", root)
    tarball = tmp_path / "rt.tar"
    rt = runtime_tarball(tarball, arch="arm64")
    out = tmp_path / "fn.xpkg"
    r = xp("xpkg", "build", "-f", str(root / "package"), "--embed-runtime-image-tarball", str(tarball),
           "-o", str(out), "--cache-dir", str(tmp_path / "c2"))  # fmt: skip
    assert r.code == 0, r.err
    doc = json.loads(xp("xpkg", "inspect", str(out), "--format", "json").out)
    assert [la["digest"] for la in doc["layers"]][:2] == rt["layers"]
    assert [la["annotation"] for la in doc["layers"]] == [None, None, "base"]
    assert (tmp_path / "c2").is_dir()


def test_build_on_a_runtime_image_from_a_registry_then_offline(
    xp: Run, tmp_path: Path, registry_plain: RegistryServer, skopeo: Skopeo
) -> None:
    from tests.xpkg.test_build import runtime_tarball

    root = tmp_path / "fn"
    shutil.copytree(FIXTURES / "function", root)
    tarball = tmp_path / "rt.tar"
    rt = runtime_tarball(tarball, fmt="oci", arch="arm64")
    ref = registry_plain.ref("runtime/fn", "v1")
    skopeo(
        "copy",
        *registry_plain.skopeo_flags(direction="dest"),
        f"oci-archive:{tarball}",
        f"docker://{ref}",
        check=True,
    )
    # the reference: the same runtime image from the tarball
    from_tarball = tmp_path / "from-tarball.xpkg"
    r = xp("xpkg", "build", "-f", str(root / "package"), "--embed-runtime-image-tarball", str(tarball),
           "-o", str(from_tarball), "--cache-dir", str(tmp_path / "c1"))  # fmt: skip
    assert r.code == 0, r.err
    want = r.out.split("(")[-1].rstrip(")\n")
    cache = str(tmp_path / "c2")
    out = tmp_path / "from-registry.xpkg"
    r = xp("xpkg", "build", "-f", str(root / "package"), "--embed-runtime-image", ref, "--plain-http",
           "-o", str(out), "--cache-dir", cache)  # fmt: skip
    assert r.code == 0, r.err
    assert r.out.strip().endswith(f"({want})")  # pulled from the registry: the very same package
    doc = json.loads(xp("xpkg", "inspect", str(out), "--format", "json").out)
    assert [la["digest"] for la in doc["layers"]][:2] == rt["layers"]
    # the runtime image is cached now: Never builds offline, to the same digest
    r = xp("xpkg", "build", "-f", str(root / "package"), "--embed-runtime-image", ref, "--pull-policy", "Never",
           "-o", str(tmp_path / "again.xpkg"), "--cache-dir", cache)  # fmt: skip
    assert r.code == 0 and r.out.strip().endswith(f"({want})"), r.err
    r = xp("xpkg", "build", "-f", str(root / "package"), "--embed-runtime-image", ref, "--pull-policy", "Never",
           "--cache-dir", str(tmp_path / "empty"))  # fmt: skip
    assert r.code == 3 and "pull policy is Never" in r.err
    r = xp("xpkg", "build", "-f", str(root / "package"), "--embed-runtime-image", ref,
           "--embed-runtime-image-tarball", str(tarball))  # fmt: skip
    assert r.code == 2 and "not both" in r.err


# ---- issue 7: what a new user hit ---------------------------------------------------------------


def test_build_and_extract_create_missing_output_folders(xp: Run, cfg: Path, tmp_path: Path) -> None:
    """``-o dist/x.xpkg`` in CI: the folder is created, as ``crossplane xpkg build`` creates it."""
    r = xp("xpkg", "build", "-f", str(cfg), "-e", str(cfg / "examples"), "-o", "dist/sub/x.xpkg")
    assert r.code == 0, r.err
    assert Path("dist/sub/x.xpkg").is_file() and not list(Path("dist/sub").glob(".*tmp*"))
    r = xp(
        "xpkg", "extract", "--from-xpkg", "dist/sub/x.xpkg", "-o", str(tmp_path / "out" / "a" / "pkg.yaml.gz")
    )
    assert r.code == 0, r.err
    assert gzip.decompress((tmp_path / "out" / "a" / "pkg.yaml.gz").read_bytes()).startswith(
        b"---\napiVersion:"
    )
    Path("taken").write_text("a file where a folder should be\n")
    for args in (
        ("build", "-f", str(cfg), "-e", str(cfg / "examples"), "-o", "taken/x.xpkg"),
        ("extract", "--from-xpkg", "dist/sub/x.xpkg", "-o", "taken/deeper/x.gz"),
    ):
        r = xp("xpkg", *args)
        assert r.code == 1 and "Traceback" not in r.err, r.err
        assert r.err.startswith("xp: error: cannot write") and "Not a directory" in r.err


def test_build_without_a_meta_object_says_where_and_what(xp: Run, tmp_path: Path) -> None:
    root = tmp_path / "pkg"
    (root / "crds").mkdir(parents=True)
    (root / "crds" / "a.yaml").write_text(
        "apiVersion: apiextensions.k8s.io/v1\nkind: CustomResourceDefinition\nmetadata:\n  name: a.b.c\n"
    )
    r = xp("xpkg", "build", "-f", str(root))
    assert r.code == 1
    assert f"{root.resolve()}: not exactly one package meta type" in r.err
    assert "meta.pkg.crossplane.io/v1 Configuration, Provider or Function" in r.err
    assert "named above" not in r.err


def test_build_with_a_deployment_lists_what_the_package_may_hold(xp: Run, cfg: Path) -> None:
    dep = cfg / "apis" / "deploy.yaml"
    dep.write_text("apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: web\n")
    r = xp("xpkg", "build", "-f", str(cfg), "-e", str(cfg / "examples"))
    assert r.code == 1
    upstream = 'Deployment/web: no kind "Deployment" is registered for version "apps/v1" in scheme "pkg/xpkg/scheme.go"'
    assert f"{dep.resolve()}:1: {upstream}\n" in r.err
    assert "a Configuration package may hold only CompositeResourceDefinition" in r.err


def test_build_warnings_say_warning_once(xp: Run, cfg: Path) -> None:
    meta = cfg / "crossplane.yaml"
    meta.write_text(meta.read_text() + "    - provider: provider-unqualified\n      version: '>=v1.0.0'\n")
    (cfg / "apis" / "dup.yaml").write_text(
        "apiVersion: apiextensions.crossplane.io/v1\nkind: Composition\nmetadata:\n  name: d\n  name: d\n"
    )
    r = xp("xpkg", "build", "-f", str(cfg), "-e", str(cfg / "examples"), "-o", str(cfg / "p.xpkg"))
    assert r.code == 0, r.err
    lines = r.err.splitlines()
    assert any("dup.yaml:5:3: warning: " in ln for ln in lines), r.err  # the YAML loader's
    assert any(
        "crossplane.yaml:1: Configuration/platform-ref-network: warning: " in ln for ln in lines
    )  # lint's
    assert all(ln.count("warning:") == 1 for ln in lines), r.err


def test_reading_and_pushing_files_leaves_no_internal_cache_entries(
    xp: Run, cfg: Path, tmp_path: Path, registry_plain: RegistryServer, unique_repo: str
) -> None:
    from tests.xpkg.test_build import runtime_tarball

    pkg = tmp_path / "p.xpkg"
    assert xp("xpkg", "build", "-f", str(cfg), "-e", str(cfg / "examples"), "-o", str(pkg)).code == 0
    fn = tmp_path / "fn"
    shutil.copytree(FIXTURES / "function", fn)
    runtime_tarball(tmp_path / "rt.tar")
    r = xp("xpkg", "build", "-f", str(fn / "package"), "--embed-runtime-image-tarball", str(tmp_path / "rt.tar"),
           "-o", str(tmp_path / "fn.xpkg"))  # fmt: skip
    assert r.code == 0, r.err
    first = json.loads(xp("xpkg", "inspect", str(pkg), "--format", "json").out)
    assert xp("xpkg", "extract", "--from-xpkg", str(pkg), "-o", str(tmp_path / "x.gz")).code == 0
    ref = registry_plain.ref(unique_repo, "v1")
    assert xp("xpkg", "push", ref, "-f", str(pkg), "--plain-http").code == 0

    listed = json.loads(xp("cache", "ls", "-o", "json").out)["images"]
    assert [(i["repository"], i["tag"]) for i in listed] == [(ref.rsplit(":", 1)[0], "v1")]
    # a file read in passing is read again from the cache; a changed file is read anew
    assert json.loads(xp("xpkg", "inspect", str(pkg), "--format", "json").out)["digest"] == first["digest"]
    other = json.loads(xp("xpkg", "inspect", str(tmp_path / "fn.xpkg"), "--format", "json").out)
    shutil.copy(tmp_path / "fn.xpkg", pkg)
    assert json.loads(xp("xpkg", "inspect", str(pkg), "--format", "json").out)["digest"] == other["digest"]
    # prune keeps what the pushed tag needs and frees the rest; files can still be read afterwards
    assert xp("cache", "prune").code == 0
    du = json.loads(xp("cache", "du", "-o", "json").out)
    assert du["images"] == 1 and du["reclaimableBytes"] == 0
    assert json.loads(xp("xpkg", "inspect", str(pkg), "--format", "json").out)["digest"] == other["digest"]
