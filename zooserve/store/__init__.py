"""Builds TorchServe model archives (model_store/*.mar) from the zoo registry."""
