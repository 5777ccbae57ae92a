"""The TorchServe backends, as the core sees them: one ``Backend`` object per backend name.

``backend.py``     the Backend: its inference client, management API, loaded models and retry policy
``http_inference.py`` / ``grpc_inference.py``   the two inference clients (one interface: ``Inference``)
``connections.py`` the gateway's one HTTP client (pooled keep-alive connections)
``management.py``  TorchServe's management API; ``models.py``: load on first use, unload least recently used
``calls.py``       every call's timeout, token and connection failures; ``errors.py``: TorchServe's failures
"""

from .backend import Backend

__all__ = ["Backend"]
