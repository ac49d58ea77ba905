"""Function kinds: python (in process), exec (a process per call), wasm (WASI), remote (gRPC/HTTP)."""
