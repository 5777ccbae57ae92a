"""zooserve: the image-classification canon served in production."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("zooserve")
except PackageNotFoundError:  # a source tree that was never installed
    __version__ = "0+unknown"
