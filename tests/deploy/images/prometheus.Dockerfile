# Stands in for prom/prometheus in the compose test (PROMETHEUS_IMAGE): Debian 12's Prometheus, with the
# official image's entry point, user (nobody) and data directory, and wget for the compose healthcheck.
ARG BASE_IMAGE=zooserve-local/bookworm:base
FROM ${BASE_IMAGE}
RUN apt-get update -qq \
    && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends prometheus wget >/dev/null \
    && rm -rf /var/lib/apt/lists/* \
    && mkdir -p /prometheus && chown 65534:65534 /prometheus
USER 65534:65534
WORKDIR /prometheus
EXPOSE 9090
ENTRYPOINT ["/usr/bin/prometheus"]
CMD ["--config.file=/etc/prometheus/prometheus.yml", "--storage.tsdb.path=/prometheus"]
