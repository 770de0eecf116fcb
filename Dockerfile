# syntax=docker/dockerfile:1
# One image for every streamgauge component; the container's command is the subcommand:
#   worker --processes 1 | api | lag-exporter | topics create | migrate check | migrate up |
#   simulate --devices N --rate R --duration S
# The install is scripts/install-venv.sh, which scripts/check-image-install.sh also runs (CI
# has no container engine); tests/deploy/test_image_install.py keeps the two in step.

# python:3.11.15-slim-bookworm, pinned by tag and by the digest of its multi-arch index.
ARG PYTHON_IMAGE=python:3.11.15-slim-bookworm@sha256:d29f48a31a8b408ed19272ca1e7b10ebae13b240a27e862d3d4217c528e2e0c3

FROM ${PYTHON_IMAGE} AS builder
# A C compiler for the workers' compiled fast check (streams/_fastcheck.c); the runtime stage
# gets the built module only.
RUN apt-get update \
    && apt-get install --yes --no-install-recommends gcc libc6-dev \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY pyproject.toml README.md constraints.txt ./
COPY scripts/install-venv.sh scripts/
COPY streams/ streams/
COPY api/ api/
# streams/schemas links here: the Avro schemas and migrations go into the package.
COPY schemas/ schemas/
RUN sh scripts/install-venv.sh /opt/streamgauge/venv /src

FROM ${PYTHON_IMAGE}
RUN groupadd --system --gid 10001 streamgauge \
    && useradd --system --uid 10001 --gid 10001 --home-dir /tmp --no-create-home \
        --shell /usr/sbin/nologin streamgauge \
    && install --directory --owner 10001 --group 10001 /var/lib/streamgauge/api-key
# ^ A named volume mounted there starts with this owner (compose's init-api-key writes it).
COPY --from=builder /opt/streamgauge/venv /opt/streamgauge/venv
# The schemas and migrations are package data (Settings find them in the installed package).
# Listen on every interface: in a container, 127.0.0.1 is unreachable from the probes.
# The worker keeps Faust's data directory under /tmp: mount a writable /tmp when the root
# file system is read-only.
ENV PATH=/opt/streamgauge/venv/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    STREAMGAUGE_API_HOST=0.0.0.0 \
    STREAMGAUGE_LAG_EXPORTER_HOST=0.0.0.0 \
    STREAMGAUGE_WORKER_METRICS_HOST=0.0.0.0
WORKDIR /tmp
USER 10001:10001
# read API, lag exporter, worker metrics (one worker process per container)
EXPOSE 8080 9308 9309
ENTRYPOINT ["streamgauge"]
CMD ["--help"]
