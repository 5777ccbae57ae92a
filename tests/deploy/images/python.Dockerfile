# Stands in for python:3.11-slim-bookworm (the Dockerfile's default base) where no image registry can be
# reached: Debian 12's own Python 3.11 on the debootstrap-made base (scripts/base-image.sh). Built by
# `make images`; the tests build zooserve's images on it.
ARG BASE_IMAGE=zooserve-local/bookworm:base
FROM ${BASE_IMAGE}
RUN apt-get update -qq \
    && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
       python3 python3-venv ca-certificates >/dev/null \
    && rm -rf /var/lib/apt/lists/* \
    && ln -s /usr/bin/python3 /usr/local/bin/python
CMD ["python3"]
