# Stands in for the official postgres image in the compose test (POSTGRES_IMAGE): Debian 12's PostgreSQL 15,
# run as uid 70 like the alpine image docker-compose.yml names, initialized from the same POSTGRES_USER,
# POSTGRES_DB and POSTGRES_PASSWORD variables by postgres-entrypoint.sh.
ARG BASE_IMAGE=zooserve-local/bookworm:base
FROM ${BASE_IMAGE}
RUN groupadd --system --gid 70 postgres \
    && useradd --system --uid 70 --gid 70 --home-dir /var/lib/postgresql --shell /bin/bash postgres \
    && apt-get update -qq \
    && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends postgresql-15 >/dev/null \
    && rm -rf /var/lib/apt/lists/* \
    && mkdir -p /var/lib/postgresql/data /var/run/postgresql \
    && chown -R postgres:postgres /var/lib/postgresql /var/run/postgresql
COPY postgres-entrypoint.sh /usr/local/bin/docker-entrypoint.sh
ENV PATH=/usr/lib/postgresql/15/bin:$PATH \
    PGDATA=/var/lib/postgresql/data
USER 70:70
EXPOSE 5432
ENTRYPOINT ["docker-entrypoint.sh"]
CMD ["postgres"]
