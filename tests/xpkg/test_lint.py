"""Lint: upstream's messages for every rule, located at file, line and kind/name; xplane's warnings."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from xplane.xpkg.errors import LintError
from xplane.xpkg.lint import (
    ERR_OR_FMT,
    Finding,
    crossplane_incompatibility,
    is_activation_policy,
    is_composition,
    is_crd,
    is_cron_operation,
    is_crossplane_compatible,
    is_mrd,
    is_mutating_webhook,
    is_operation,
    is_validating_webhook,
    is_watch_operation,
    is_xrd,
    lint_or_raise,
    lint_package,
)
from xplane.xpkg.yaml import Located

from .pkgload import FIXTURES, load_package, split_documents

CONFIGURATION = FIXTURES / "configuration"
PROVIDER = FIXTURES / "provider" / "package"
FUNCTION = FIXTURES / "function" / "package"

CONFIG_OR = ERR_OR_FMT.format(
    "object is not an XRD, object is not an ManagedResourceActivationPolicy, object is not a Composition, "
    "object is not an Operation, object is not a CronOperation, object is not a WatchOperation"
)
PROVIDER_OR = ERR_OR_FMT.format(
    "object is not a CRD, object is not an MRD, object is not an ValidatingWebhookConfiguration, "
    "object is not a MutatingWebhookConfiguration"
)

CRD = {
    "apiVersion": "apiextensions.k8s.io/v1",
    "kind": "CustomResourceDefinition",
    "metadata": {"name": "a.b.c"},
}
XRD = {
    "apiVersion": "apiextensions.crossplane.io/v2",
    "kind": "CompositeResourceDefinition",
    "metadata": {"name": "x"},
}


def _errors(docs: list[Any], **kw: Any) -> list[str]:
    return [f.message for f in lint_package(docs, **kw).errors]


@pytest.mark.parametrize("root", [CONFIGURATION, PROVIDER, FUNCTION])
def test_fixtures_lint_clean(root: Any) -> None:
    result = lint_package(load_package(root))
    assert result.ok, [str(f) for f in result.findings]
    assert result.findings == ()
    assert result.upstream_error is None
    assert result.meta is not None
    lint_or_raise(load_package(root))


def test_fixture_object_counts() -> None:
    assert len(load_package(CONFIGURATION)) == 6  # meta, 2 XRDs, Composition, CronOperation, MRAP
    assert len(load_package(PROVIDER)) == 6  # meta, 2 CRDs, MRD, 2 webhook configurations
    assert len(load_package(FUNCTION)) == 2


def test_no_meta() -> None:
    docs = [d for d in load_package(PROVIDER) if d.kind != "Provider"]
    result = lint_package(docs, package_type="Provider")
    assert [f.message for f in result.errors] == ["not exactly one package meta type"]
    assert result.errors[0].file is None and "none of the 5 document(s)" in (result.errors[0].hint or "")
    assert "meta.pkg.crossplane.io/v1 Configuration, Provider or Function" in (result.errors[0].hint or "")
    assert result.upstream_error == "not exactly one package meta type"


def test_two_metas_names_the_second() -> None:
    docs = load_package(FUNCTION)
    second = Located(copy.deepcopy(docs[0].doc), "extra/crossplane.yaml", 7)
    result = lint_package([*docs, second])
    one = [f for f in result.errors if f.code == "one-meta"]
    assert [f.message for f in one] == ["not exactly one package meta type"]
    assert (one[0].file, one[0].line, one[0].object) == (
        "extra/crossplane.yaml",
        7,
        "Function/function-patch-and-transform",
    )
    assert "crossplane.yaml:1" in (one[0].hint or "")
    assert result.upstream_error == "not exactly one package meta type"


def test_meta_type_is_not_a_package() -> None:
    watch = Located({"apiVersion": "meta.pkg.crossplane.io/v1", "kind": "WatchEvent"}, "w.yaml", 1)
    result = lint_package([*load_package(FUNCTION), watch])
    assert "meta type is not a package" in [f.message for f in result.errors]


@pytest.mark.parametrize(
    ("root", "package_type", "message"),
    [
        (CONFIGURATION, "Provider", "package meta type is not Provider"),
        (PROVIDER, "Configuration", "package meta type is not Configuration"),
        (CONFIGURATION, "Function", "package meta type is not Function"),
    ],
)
def test_wrong_meta_type(root: Any, package_type: str, message: str) -> None:
    result = lint_package(load_package(root), package_type=package_type)
    assert result.upstream_error == message
    meta = next(f for f in result.errors if f.code == "meta-type")
    assert (meta.message, meta.file, meta.line) == (message, "crossplane.yaml", 1)


def test_configuration_rejects_a_crd_with_upstream_or_message() -> None:
    docs = [*load_package(CONFIGURATION), Located(CRD, "crds/a.yaml", 3)]
    result = lint_package(docs)
    assert [f.message for f in result.errors] == [CONFIG_OR]
    f = result.errors[0]
    assert (f.file, f.line, f.object) == ("crds/a.yaml", 3, "CustomResourceDefinition/a.b.c")
    assert str(f) == f"crds/a.yaml:3: CustomResourceDefinition/a.b.c: {CONFIG_OR}"


def test_provider_rejects_a_composition() -> None:
    comp = {"apiVersion": "apiextensions.crossplane.io/v1", "kind": "Composition", "metadata": {"name": "c"}}
    assert _errors([*load_package(PROVIDER), comp]) == [PROVIDER_OR]


def test_function_rejects_anything_but_crds() -> None:
    assert _errors([*load_package(FUNCTION), XRD]) == ["object is not a CRD"]


def test_v1_composition_only() -> None:
    v2comp = {
        "apiVersion": "apiextensions.crossplane.io/v2",
        "kind": "Composition",
        "metadata": {"name": "c"},
    }
    result = lint_package([*load_package(CONFIGURATION), v2comp])
    assert result.errors[0].code == "unknown-kind"
    assert result.errors[0].message.startswith('no kind "Composition" is registered for version')


# Each object check, with a document it must reject (the message is upstream's).
KIND_CHECKS = [
    (is_crd, XRD, "object is not a CRD"),
    (is_mrd, CRD, "object is not an MRD"),
    (is_xrd, CRD, "object is not an XRD"),
    (is_composition, XRD, "object is not a Composition"),
    (is_activation_policy, XRD, "object is not an ManagedResourceActivationPolicy"),
    (is_operation, XRD, "object is not an Operation"),
    (is_cron_operation, XRD, "object is not a CronOperation"),
    (is_watch_operation, XRD, "object is not a WatchOperation"),
    (is_validating_webhook, CRD, "object is not an ValidatingWebhookConfiguration"),
    (is_mutating_webhook, CRD, "object is not a MutatingWebhookConfiguration"),
]


@pytest.mark.parametrize(("check", "doc", "message"), KIND_CHECKS)
def test_kind_checks(check: Any, doc: dict[str, Any], message: str) -> None:
    assert check(Located(doc)) == message


def test_kind_checks_accept_their_fixtures() -> None:
    by_kind = {d.kind: d for root in (CONFIGURATION, PROVIDER, FUNCTION) for d in load_package(root)}
    assert is_crd(by_kind["CustomResourceDefinition"]) is None
    assert is_mrd(by_kind["ManagedResourceDefinition"]) is None
    assert is_xrd(by_kind["CompositeResourceDefinition"]) is None
    assert is_composition(by_kind["Composition"]) is None
    assert is_activation_policy(by_kind["ManagedResourceActivationPolicy"]) is None
    assert is_cron_operation(by_kind["CronOperation"]) is None
    assert is_validating_webhook(by_kind["ValidatingWebhookConfiguration"]) is None
    assert is_mutating_webhook(by_kind["MutatingWebhookConfiguration"]) is None


def _with_meta(root: Any, **spec: Any) -> list[Located]:
    docs = load_package(root)
    i = next(i for i, d in enumerate(docs) if d.file == "crossplane.yaml")
    meta = copy.deepcopy(docs[i].doc)
    meta["spec"].update(spec)
    docs[i] = Located(meta, docs[i].file, docs[i].line)
    return docs


@pytest.mark.parametrize(
    ("constraint", "detail"),
    [
        ("foo", 'improper constraint: "foo"'),
        ("", 'improper constraint: ""'),
        (">=1.0.0,", 'improper constraint: ">=1.0.0,"'),
        ("1.xx", "constraint parser error"),
    ],
)
def test_poorly_formatted_crossplane_constraint(constraint: str, detail: str) -> None:
    docs = _with_meta(PROVIDER, crossplane={"version": constraint})
    result = lint_package(docs)
    want = f"package version constraints are poorly formatted: {detail}"
    assert [f.message for f in result.errors] == [want]
    assert result.upstream_error == want
    assert result.errors[0].object == "Provider/provider-nop"


def test_crossplane_compatibility() -> None:
    docs = _with_meta(FUNCTION, crossplane={"version": ">=v2.4.0"})
    assert lint_package(docs).ok  # build does not check the running version
    result = lint_package(docs, crossplane_version="v2.3.0")
    assert [f.message for f in result.errors] == [
        "package is not compatible with Crossplane version (v2.3.0)"
    ]
    assert lint_package(docs, crossplane_version="v2.4.1").ok


@pytest.mark.parametrize(
    ("constraint", "version", "want"),
    [
        (None, "v2.3.0", None),
        (">=v2.0.0", "v2.3.0", None),
        (
            ">=v2.0.0",
            "v0.0.0-1700000000-abc1234",
            "package is not compatible with Crossplane version (v0.0.0-1700000000-abc1234)",
        ),
        (">=v2.0.0-0", "v2.4.0-rc.1", None),
        ("<v2", "v2.3.0", "package is not compatible with Crossplane version (v2.3.0)"),
        (
            "foo",
            "v2.3.0",
            'package is not compatible with Crossplane version (v2.3.0): improper constraint: "foo"',
        ),
        (
            ">=v2",
            "garbage",
            "package is not compatible with Crossplane version (garbage): invalid semantic version",
        ),
    ],
)
def test_crossplane_incompatibility(constraint: str | None, version: str, want: str | None) -> None:
    assert crossplane_incompatibility(constraint, version) == want
    assert is_crossplane_compatible(constraint, version) is (want is None)


def test_unknown_kind_is_located() -> None:
    text = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: cm\n"
    docs = [*load_package(CONFIGURATION), *split_documents(text, "extra.yaml")]
    result = lint_package(docs)
    f = result.errors[0]
    assert f.message.startswith('no kind "ConfigMap" is registered for version "v1" in scheme ')
    assert (f.file, f.line, f.object, f.code) == ("extra.yaml", 1, "ConfigMap/cm", "unknown-kind")
    assert result.upstream_error == f.message


def test_missing_kind() -> None:
    result = lint_package([*load_package(FUNCTION), {"apiVersion": "v1", "metadata": {"name": "n"}}])
    assert [f.message for f in result.errors] == ["Object 'Kind' is missing"]
    assert result.errors[0].object == "<no kind>/n"


def test_meta_decode_error() -> None:
    docs = _with_meta(CONFIGURATION, dependsOn=[{"provider": "xpkg.crossplane.io/o/p", "version": 1.0}])
    result = lint_package(docs)
    assert result.errors[0].code == "meta-decode"
    assert "spec.dependsOn[0].version" in result.errors[0].message


def test_errors_across_files_are_all_reported_in_order() -> None:
    docs = _with_meta(FUNCTION, crossplane={"version": "nope"})
    docs.append(Located(XRD, "z.yaml", 4))
    docs.append(Located(CRD, "a.yaml", 9))
    docs.append(Located({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s"}}, "b.yaml", 2))
    result = lint_package(docs)
    assert [(f.file, f.code) for f in result.errors] == [
        ("b.yaml", "unknown-kind"),
        ("crossplane.yaml", "crossplane-version"),
        ("z.yaml", "object-kind"),
    ]
    assert result.upstream_error and result.upstream_error.startswith('no kind "Secret"')
    with pytest.raises(LintError) as e:
        result.raise_for_errors()
    assert len(e.value.findings) == 3
    assert "package failed lint with 3 error(s)" in str(e.value)
    assert "z.yaml:4: CompositeResourceDefinition/x: object is not a CRD" in str(e.value)


# ---- warnings upstream lacks ------------------------------------------------------------------

WARNINGS = [
    ([{"provider": "xpkg.crossplane.io/o/p", "version": "latest"}], "dependency-version", "does not parse"),
    (
        [{"provider": "xpkg.crossplane.io/o/p", "version": ""}],
        "dependency-version",
        'improper constraint: ""',
    ),
    (
        [{"provider": "xpkg.crossplane.io/o/p", "version": "sha256:abc"}],
        "dependency-version",
        "does not parse",
    ),
    (
        [{"package": "xpkg.crossplane.io/o/p", "version": "v1"}],
        "invalid-dependency",
        "encountered an invalid",
    ),
    (
        [{"provider": "crossplane-contrib/provider-nop", "version": "v1"}],
        "unqualified-package",
        "does not name",
    ),
    ([{"provider": "provider-nop", "version": "v1"}], "unqualified-package", "does not name a registry"),
    ([{"provider": "xpkg.crossplane.io/o/P!", "version": "v1"}], "unqualified-package", "is not valid"),
    ([{"provider": "xpkg.crossplane.io/o/p:v1.0.0", "version": "v1"}], "package-has-tag", "carries a tag"),
]


@pytest.mark.parametrize(("deps", "code", "fragment"), WARNINGS)
def test_dependency_warnings(deps: list[dict[str, str]], code: str, fragment: str) -> None:
    result = lint_package(_with_meta(CONFIGURATION, dependsOn=deps))
    assert result.ok  # upstream builds these packages; they fail later, at install
    assert [f.code for f in result.warnings] == [code]
    w = result.warnings[0]
    assert fragment in w.message and w.message.startswith("spec.dependsOn[0]: ")
    assert (w.file, w.line, w.object) == ("crossplane.yaml", 1, "Configuration/platform-ref-network")
    assert str(w).startswith("crossplane.yaml:1: Configuration/platform-ref-network: warning: ")


def test_localhost_with_port_is_qualified() -> None:
    deps = [
        {"provider": "localhost:5000/o/p", "version": ">=v1"},
        {"function": "127.0.0.1:5000/f", "version": "v1"},
    ]
    assert lint_package(_with_meta(CONFIGURATION, dependsOn=deps)).findings == ()


@pytest.mark.parametrize("name", ["Platform", "platform_ref", "-x", "x-", "a" * 64, ""])
def test_meta_name_not_dns_label(name: str) -> None:
    docs = load_package(FUNCTION)
    meta = copy.deepcopy(docs[0].doc)
    meta["metadata"]["name"] = name
    result = lint_package([Located(meta, "crossplane.yaml", 1), *docs[1:]])
    assert result.ok
    assert [f.code for f in result.warnings] == ["meta-name"]
    assert "is not a DNS label" in result.warnings[0].message


def test_plain_dicts_are_accepted_unlocated() -> None:
    docs = [d.doc for d in load_package(FUNCTION)] + [XRD]
    f = lint_package(docs).errors[0]
    assert (f.file, f.line, f.object) == (None, None, "CompositeResourceDefinition/x")
    assert str(f) == "CompositeResourceDefinition/x: object is not a CRD"
    assert str(Finding("error", "c", "m")) == "m"


def test_validator_mode_skips_object_kinds() -> None:
    docs = [*load_package(FUNCTION), Located(XRD, "x.yaml", 1)]
    assert not lint_package(docs).ok
    assert lint_package(docs, check_objects=False).ok
    bad = _with_meta(FUNCTION, crossplane={"version": "foo"})
    assert not lint_package(bad, check_objects=False).ok


# ---- constraint-v15: constraints Crossplane ≤ v2.2 (Masterminds/semver v1.5) reads differently -----


def test_crossplane_version_v15_parse_error_warns() -> None:
    result = lint_package(_with_meta(CONFIGURATION, crossplane={"version": ">=v2.0.0-0 <v3"}))
    assert result.ok  # v2.3+ parses it, so upstream builds it
    assert [f.code for f in result.warnings] == ["constraint-v15"]
    w = result.warnings[0]
    assert w.message.startswith(
        "spec.crossplane.version '>=v2.0.0-0 <v3' is a parse error on Crossplane ≤ v2.2 "
        "(Masterminds/semver v1.5 splits AND groups on commas only); write '>=v2.0.0-0, <v3'"
    )
    assert w.hint and "Masterminds/semver v1.5" in w.hint
    assert (w.file, w.object) == ("crossplane.yaml", "Configuration/platform-ref-network")


@pytest.mark.parametrize(
    ("version", "fragment"),
    [
        (">=v1.0.0 <v2.0.0", "is a parse error on Crossplane ≤ v2.2"),
        ("^0.2.3", "admits 0.3.0 on Crossplane ≤ v2.2, which v2.3+ rejects"),
        (">=v1.0.0-0, <v2.0.0", "rejects 1.0.0-0 on Crossplane ≤ v2.2, which v2.3+ admits"),
    ],
)
def test_dependency_version_v15_warns(version: str, fragment: str) -> None:
    deps = [{"provider": "xpkg.crossplane.io/o/p", "version": version}]
    result = lint_package(_with_meta(CONFIGURATION, dependsOn=deps))
    assert result.ok
    assert [f.code for f in result.warnings] == ["constraint-v15"]
    assert result.warnings[0].message.startswith(f"spec.dependsOn[0].version '{version}' {fragment}")


@pytest.mark.parametrize("version", [">=v1.0.0, <v2.0.0", "~v1.2", ">=v0.2.0-0", "sha256:" + "a" * 64])
def test_constraints_read_alike_do_not_warn(version: str) -> None:
    docs = _with_meta(
        CONFIGURATION,
        crossplane={"version": version},
        dependsOn=[{"provider": "xpkg.crossplane.io/o/p", "version": version}],
    )
    codes = [f.code for f in lint_package(docs).findings]
    assert "constraint-v15" not in codes


def test_unparseable_constraint_is_an_error_not_a_v15_warning() -> None:
    result = lint_package(_with_meta(CONFIGURATION, crossplane={"version": "foo"}))
    assert [f.code for f in result.findings] == ["crossplane-version"]


# ---- explanations: upstream's message stays, xplane says what is allowed (issue 7) --------------

DEPLOYMENT = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"}}
INSTALL_OBJECT = {"apiVersion": "pkg.crossplane.io/v1", "kind": "Configuration", "metadata": {"name": "c"}}
META_V2 = {"apiVersion": "meta.pkg.crossplane.io/v2", "kind": "Configuration", "metadata": {"name": "c"}}

# (package, extra document, code of the finding, upstream's message, words xplane's explanation holds)
EXPLAINED: list[tuple[Any, dict[str, Any], str, str, list[str]]] = [
    (
        CONFIGURATION,
        DEPLOYMENT,
        "unknown-kind",
        'no kind "Deployment" is registered for version "apps/v1" in scheme "pkg/xpkg/scheme.go"',
        [
            "apps/v1 Deployment cannot be part of a package",
            "a Configuration package may hold only CompositeResourceDefinition (apiextensions.crossplane.io/v1 or v2)",
            "Operation, CronOperation, WatchOperation (ops.crossplane.io/v1alpha1)",
            "--ignore",
        ],
    ),
    (
        PROVIDER,
        XRD,
        "object-kind",
        PROVIDER_OR,
        ["a Provider package may hold only CustomResourceDefinition (apiextensions.k8s.io/v1 or v1beta1)"],
    ),
    (
        FUNCTION,
        XRD,
        "object-kind",
        "object is not a CRD",
        ["a Function package may hold only CustomResourceDefinition"],
    ),
    (
        None,
        DEPLOYMENT,
        "unknown-kind",
        'no kind "Deployment" is registered',
        ["in a Configuration, CompositeResourceDefinition", "in a Provider, CustomResourceDefinition"],
    ),
    (
        None,
        INSTALL_OBJECT,
        "unknown-kind",
        'no kind "Configuration" is registered for version "pkg.crossplane.io/v1"',
        ["installs a package into a cluster", "is meta.pkg.crossplane.io/v1 Configuration"],
    ),
    (
        None,
        META_V2,
        "unknown-kind",
        'no kind "Configuration" is registered for version "meta.pkg.crossplane.io/v2"',
        ["meta.pkg.crossplane.io/v2 has no kind Configuration", "meta.pkg.crossplane.io/v1beta1: Function"],
    ),
    (
        None,
        CRD,
        "one-meta",
        "not exactly one package meta type",
        ["none of the 1 document(s) read", "meta.pkg.crossplane.io/v1 Configuration, Provider or Function"],
    ),
]


@pytest.mark.parametrize(("package", "extra", "code", "upstream", "words"), EXPLAINED)
def test_errors_keep_upstreams_text_and_explain_it(
    package: Any, extra: dict[str, Any], code: str, upstream: str, words: list[str]
) -> None:
    docs = [*(load_package(package) if package else []), Located(extra, "/pkg/extra.yaml", 3)]
    result = lint_package(docs, source="/pkg")
    f = next(f for f in result.errors if f.code == code)
    assert f.message.startswith(upstream)  # scripts matching upstream's text keep working
    assert (f.file, f.line) == (("/pkg", None) if code == "one-meta" else ("/pkg/extra.yaml", 3))
    for w in words:
        assert w in (f.hint or ""), f.hint
    with pytest.raises(LintError) as e:
        result.raise_for_errors()
    assert f"\n    {f.hint}" in str(e.value)  # the explanation is printed under the located message


def test_no_documents_at_all_points_at_the_package_root() -> None:
    result = lint_package([], source="/src/pkg")
    (f,) = result.errors
    assert str(f) == "/src/pkg: not exactly one package meta type"
    assert f.hint and "no YAML documents were read from /src/pkg" in f.hint and "--package-root" in f.hint
    with pytest.raises(LintError) as e:
        result.raise_for_errors()
    assert e.value.hint == "fix the problems above, then build again"  # nothing is "named above"


def test_a_repeated_explanation_is_printed_once() -> None:
    docs = [*load_package(CONFIGURATION), *(Located(CRD, f"c{i}.yaml", 1) for i in range(3))]
    with pytest.raises(LintError) as e:
        lint_or_raise(docs)
    text = str(e.value)
    assert text.count("object did not pass any of the linters") == 3
    assert text.count("a Configuration package may hold only") == 1
    assert e.value.hint == "fix the objects named above, then build again"
