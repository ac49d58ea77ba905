"""xplane.xpkg: Crossplane packages — YAML with Kubernetes' rules, semver, meta types, lint, build, push, read.

The curated public API: other packages import from ``xplane.xpkg`` only these names. They load
lazily, so importing ``xplane.xpkg`` costs nothing until a name is used.

Inside, the package operations (build, lint, meta, objects, layers, extract, publish, package,
init, discover, parsedcache) sit above two rooms they use through the rooms' ``__init__``:
:mod:`xplane.xpkg.yaml` (Kubernetes' YAML dialect and the located documents) and
:mod:`xplane.xpkg.semver` (Masterminds versions and constraints); :mod:`xplane.xpkg.errors` is at
the bottom. ``pyproject.toml``'s import-linter contracts check this.
"""

from __future__ import annotations

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
}

__all__ = sorted(_EXPORTS)
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
