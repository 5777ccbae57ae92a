"""The Open Inference Protocol (KServe v2) on the gateway's REST and gRPC ports: a thin transport over the
same core (``protocol.py`` the wire-independent part, ``rest.py`` and ``grpc_service.py`` the bindings)."""
