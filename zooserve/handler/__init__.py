"""The one TorchServe handler that serves every zoo architecture (entry point: ``zoo_handler.py``)."""
