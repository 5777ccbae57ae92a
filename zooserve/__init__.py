"""zooserve: the image-classification canon served in production."""
