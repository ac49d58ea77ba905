"""``xp xpkg init``: a package skeleton that builds and lints cleanly as it is.

Upstream clones a template repository from GitHub; xplane writes the skeleton itself, so it works
offline. Each type gets a ``crossplane.yaml`` meta object plus the kind of content its linter
accepts: a Configuration an XRD, a Composition and an example XR; a Provider a CRD; a Function an
input CRD and a Python function (written with the official SDK) that ``xfn`` can serve.
"""

from __future__ import annotations

import re
from pathlib import Path

from xplane.oci import atomic_output
from xplane.xpkg.errors import PackageError

PACKAGE_TYPES = ("configuration", "function", "provider")
_NAME_RE = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")


def _meta(api_version: str, kind: str, name: str, description: str, spec: str = "") -> str:
    """The ``crossplane.yaml`` meta object every skeleton starts with (``spec``: more of its spec)."""
    return f"""\
apiVersion: meta.pkg.crossplane.io/{api_version}
kind: {kind}
metadata:
  name: {name}
  annotations:
    meta.crossplane.io/description: {description}
spec:
  crossplane:
    version: ">=v2.0.0-0"
{spec}"""


def _configuration(name: str) -> dict[str, str]:
    return {
        "crossplane.yaml": _meta(
            "v1",
            "Configuration",
            name,
            "A Crossplane Configuration.",
            """\
  dependsOn:
    - apiVersion: pkg.crossplane.io/v1
      kind: Function
      package: xpkg.crossplane.io/crossplane-contrib/function-patch-and-transform
      version: ">=v0.8.0"
""",
        ),
        "apis/xbuckets/definition.yaml": """\
apiVersion: apiextensions.crossplane.io/v2
kind: CompositeResourceDefinition
metadata:
  name: xbuckets.example.org
spec:
  group: example.org
  names:
    kind: XBucket
    plural: xbuckets
  scope: Namespaced
  versions:
    - name: v1alpha1
      served: true
      referenceable: true
      schema:
        openAPIV3Schema:
          type: object
          properties:
            spec:
              type: object
              properties:
                region:
                  type: string
              required:
                - region
""",
        "apis/xbuckets/composition.yaml": """\
apiVersion: apiextensions.crossplane.io/v1
kind: Composition
metadata:
  name: xbuckets.example.org
spec:
  compositeTypeRef:
    apiVersion: example.org/v1alpha1
    kind: XBucket
  mode: Pipeline
  pipeline:
    - step: patch-and-transform
      functionRef:
        name: crossplane-contrib-function-patch-and-transform
      input:
        apiVersion: pt.fn.crossplane.io/v1beta1
        kind: Resources
        resources: []
""",
        "examples/xbucket.yaml": """\
apiVersion: example.org/v1alpha1
kind: XBucket
metadata:
  name: example
  namespace: default
spec:
  region: eu-central-1
""",
    }


def _provider(name: str) -> dict[str, str]:
    return {
        "crossplane.yaml": _meta("v1", "Provider", name, "A Crossplane Provider."),
        "crds/sample.example.org_widgets.yaml": """\
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: widgets.sample.example.org
spec:
  group: sample.example.org
  names:
    kind: Widget
    listKind: WidgetList
    plural: widgets
    singular: widget
  scope: Cluster
  versions:
    - name: v1alpha1
      served: true
      storage: true
      schema:
        openAPIV3Schema:
          type: object
          properties:
            spec:
              type: object
              properties:
                forProvider:
                  type: object
                  properties:
                    size:
                      type: integer
""",
    }


def _function(name: str) -> dict[str, str]:
    return {
        "package/crossplane.yaml": _meta(
            "v1beta1", "Function", name, "A composition function.", "  capabilities:\n    - composition\n"
        ),
        "package/input/template.fn.crossplane.io_inputs.yaml": """\
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: inputs.template.fn.crossplane.io
spec:
  group: template.fn.crossplane.io
  names:
    kind: Input
    listKind: InputList
    plural: inputs
    singular: input
  scope: Namespaced
  versions:
    - name: v1beta1
      served: true
      storage: true
      schema:
        openAPIV3Schema:
          type: object
          properties:
            example:
              type: string
""",
        "function/fn.py": '''\
"""A composition function written with the official crossplane-function-sdk-python."""

from crossplane.function import resource, response
from crossplane.function.proto.v1 import run_function_pb2 as fnv1
from crossplane.function.proto.v1 import run_function_pb2_grpc as grpcv1


class FunctionRunner(grpcv1.FunctionRunnerServiceServicer):
    """Runs the function."""

    async def RunFunction(self, req: fnv1.RunFunctionRequest, _context) -> fnv1.RunFunctionResponse:
        rsp = response.to(req)
        xr = resource.struct_to_dict(req.observed.composite.resource)
        name = xr.get("metadata", {}).get("name", "unknown")
        response.normal(rsp, f"I was run with input for {name}")
        return rsp
''',
        "function/function.yaml": f"""\
name: {name}
kind: python
entrypoint: fn.py
""",
    }


_TEMPLATES = {"configuration": _configuration, "function": _function, "provider": _provider}


def init_package(name: str, package_type: str, directory: Path, *, force: bool = False) -> list[Path]:
    """Write a ``package_type`` skeleton named ``name`` into ``directory``; return the files written.

    Refuses to overwrite existing files unless ``force``.
    """
    if package_type not in _TEMPLATES:
        raise PackageError(
            f"unknown package type {package_type!r}", hint=f"choose one of {', '.join(PACKAGE_TYPES)}"
        )
    if not _NAME_RE.match(name):
        raise PackageError(
            f"package name {name!r} is not a DNS label",
            hint="use lower-case letters, digits and '-', at most 63 characters, e.g. 'configuration-demo'",
        )
    files = _TEMPLATES[package_type](name)
    targets = {directory / rel: content for rel, content in files.items()}
    existing = [p for p in targets if p.exists()]
    if existing and not force:
        raise PackageError(
            f"{existing[0]} already exists; not overwriting", hint="choose another directory or pass --force"
        )
    for path, content in targets.items():
        with atomic_output(path) as f:  # unpredictable temp name, O_EXCL: a planted link is not followed
            f.write(content.encode())
    return list(targets)
