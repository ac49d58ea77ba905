"""function-hello: greets the composite resource's spec.name.

Laid out like function-template-python (a ``function`` package with ``fn.py`` and ``main.py``): xfn
serves it as it is, and ``python -m function.main --insecure`` serves it with the SDK's own server.
"""

from crossplane.function import logging, resource, response
from crossplane.function.proto.v1 import run_function_pb2 as fnv1
from crossplane.function.proto.v1 import run_function_pb2_grpc as grpcv1

from .greeting import greeting_for


class FunctionRunner(grpcv1.FunctionRunnerServiceServicer):
    """Writes a greeting into the XR's status and composes a ConfigMap that holds it."""

    def __init__(self) -> None:
        self.log = logging.get_logger()

    async def RunFunction(self, req: fnv1.RunFunctionRequest, _: object) -> fnv1.RunFunctionResponse:
        log = self.log.bind(tag=req.meta.tag)
        rsp = response.to(req)

        xr = resource.struct_to_dict(req.observed.composite.resource)
        name = xr.get("spec", {}).get("name")
        if not name:
            response.fatal(rsp, "the composite resource has no spec.name")
            return rsp
        greeting = "Hello"
        if req.HasField("input"):
            greeting = resource.struct_to_dict(req.input).get("greeting", greeting)
        text = greeting_for(greeting, name)
        log.info("greeting", name=name)

        resource.update(rsp.desired.composite, {"status": {"greeting": text}})
        resource.update(
            rsp.desired.resources["greeting"],
            {
                "apiVersion": "v1",
                "kind": "ConfigMap",
                "data": {"greeting": text},
            },
        )
        response.normal(rsp, text)
        return rsp
