# Stands in for locustio/locust in the compose test (LOCUST_IMAGE): the pinned locust (requirements-dev.txt)
# from the wheelhouse (`make wheelhouse`; the build context is wheelhouse/locust), with the official image's
# entry point and a non-root user.
ARG PYTHON_IMAGE=zooserve-local/python:3.11-slim-bookworm
FROM ${PYTHON_IMAGE}
ARG LOCUST_VERSION
COPY . /wheelhouse/
RUN python3 -m venv /opt/locust \
    && /opt/locust/bin/pip install -q --no-index --find-links /wheelhouse "locust==${LOCUST_VERSION}"
ENV PATH=/opt/locust/bin:$PATH
USER 1000:1000
EXPOSE 8089
ENTRYPOINT ["locust"]
