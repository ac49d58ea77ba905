"""xplane.xpkg: Crossplane packages — YAML with Kubernetes' rules, semver, meta types, lint, build, push, read.

The curated public API: other packages import from ``xplane.xpkg`` only these names (an
import-linter contract in pyproject.toml checks it). They load lazily, so importing
``xplane.xpkg`` costs nothing until a name is used.

Inside, the package operations (build, lint, meta, objects, layers, extract, publish, package,
init, discover, parsedcache) sit above two rooms they use through the rooms' ``__init__``:
:mod:`xplane.xpkg.yaml` (Kubernetes' YAML dialect and the located documents) and
:mod:`xplane.xpkg.semver` (Masterminds versions and constraints); :mod:`xplane.xpkg.errors` is at
the bottom. ``pyproject.toml``'s import-linter contracts check this.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from xplane._lazy import lazy_exports

_EXPORTS: dict[str, str] = {
    # errors
    "PackageError": "errors",
    "YAMLError": "errors",
    "SemverError": "errors",
    "MetaError": "errors",
    "UnknownKindError": "errors",
    "LintError": "errors",
    # YAML
    "load_all": "yaml",
    "loads": "yaml",
    "dump_documents": "yaml",
    "YAMLWarning": "yaml",
    "Document": "yaml",
    "Located": "yaml",
    "DocumentStream": "yaml",
    "parse_stream": "yaml",
    "read_files": "yaml",
    "ParsedCache": "parsedcache",
    # semver
    "Version": "semver",
    "Constraint": "semver",
    "satisfies": "semver",
    "is_complete_tag": "semver",
    "is_digest_constraint": "semver",
    "v15_difference": "semver",
    # meta, objects, lint
    "PackageMeta": "meta",
    "Configuration": "meta",
    "Provider": "meta",
    "Function": "meta",
    "Dependency": "meta",
    "ResolvedDependency": "meta",
    "is_meta_package": "objects",
    "Finding": "lint",
    "LintResult": "lint",
    "lint_package": "lint",
    "crossplane_incompatibility": "lint",
    # build, push, read
    "BuildOptions": "build",
    "BuiltPackage": "build",
    "BuildError": "build",
    "build_package": "build",
    "push_packages": "publish",
    "PushResult": "publish",
    "Package": "package",
    "open_package": "package",
    "open_image": "package",
    "read_image_package": "package",
    "extract_to_gzip": "package",
    "read_package_yaml": "extract",
    "init_package": "init",
    "find_package_files": "publish",
    "parse_annotations": "publish",
    "MAX_LAYER_ENTRIES": "extract",
}

__all__ = [
    "MAX_LAYER_ENTRIES",
    "BuildError",
    "BuildOptions",
    "BuiltPackage",
    "Configuration",
    "Constraint",
    "Dependency",
    "Document",
    "DocumentStream",
    "Finding",
    "Function",
    "LintError",
    "LintResult",
    "Located",
    "MetaError",
    "Package",
    "PackageError",
    "PackageMeta",
    "ParsedCache",
    "Provider",
    "PushResult",
    "ResolvedDependency",
    "SemverError",
    "UnknownKindError",
    "Version",
    "YAMLError",
    "YAMLWarning",
    "build_package",
    "crossplane_incompatibility",
    "dump_documents",
    "extract_to_gzip",
    "find_package_files",
    "init_package",
    "is_complete_tag",
    "is_digest_constraint",
    "is_meta_package",
    "lint_package",
    "load_all",
    "loads",
    "open_image",
    "open_package",
    "parse_annotations",
    "parse_stream",
    "push_packages",
    "read_files",
    "read_image_package",
    "read_package_yaml",
    "satisfies",
    "v15_difference",
]
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)

if TYPE_CHECKING:  # the same names, for type checkers (at run time they load on first use)
    from xplane.xpkg.build import BuildError, BuildOptions, BuiltPackage, build_package
    from xplane.xpkg.errors import (
        LintError,
        MetaError,
        PackageError,
        SemverError,
        UnknownKindError,
        YAMLError,
    )
    from xplane.xpkg.extract import MAX_LAYER_ENTRIES, read_package_yaml
    from xplane.xpkg.init import init_package
    from xplane.xpkg.lint import Finding, LintResult, crossplane_incompatibility, lint_package
    from xplane.xpkg.meta import (
        Configuration,
        Dependency,
        Function,
        PackageMeta,
        Provider,
        ResolvedDependency,
    )
    from xplane.xpkg.objects import is_meta_package
    from xplane.xpkg.package import Package, extract_to_gzip, open_image, open_package, read_image_package
    from xplane.xpkg.parsedcache import ParsedCache
    from xplane.xpkg.publish import PushResult, find_package_files, parse_annotations, push_packages
    from xplane.xpkg.semver import (
        Constraint,
        Version,
        is_complete_tag,
        is_digest_constraint,
        satisfies,
        v15_difference,
    )
    from xplane.xpkg.yaml import (
        Document,
        DocumentStream,
        Located,
        YAMLWarning,
        dump_documents,
        load_all,
        loads,
        parse_stream,
        read_files,
    )
