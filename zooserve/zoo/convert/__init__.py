"""Converters from the official checkpoint formats of networks no library ships to our safetensors.

``python -m zooserve.zoo.convert.crunet`` (the CRU-Net authors' MXNet ``.params``) and
``python -m zooserve.zoo.convert.shufflenetv2_large`` (Megvii's PyTorch checkpoint); the file they write is
what ``zooserve store build NAME --weights NAME=FILE`` takes.
"""
