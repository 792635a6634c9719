# authgate's image: the static binary and a CA bundle, nothing else (no
# shell, no package manager, no remote base image). Written in the syntax
# that docker, podman and buildah share.
#
# `make image` prepares the build context first: it builds bin/image/authgate
# with the local Go (CGO_ENABLED=0, -trimpath) and copies the build machine's
# /etc/ssl/certs/ca-certificates.crt next to it; .dockerignore sends nothing
# else. To build from source inside a golang image instead (needs a
# registry), see deploy/Dockerfile.source.
FROM scratch

ARG VERSION=dev
ARG REVISION=unknown
ARG SOURCE=https://github.com/authgate/authgate

LABEL org.opencontainers.image.title="authgate" \
      org.opencontainers.image.description="Bearer-token gateway: OAuth introspection or local JWT, then an Open Policy Agent decision" \
      org.opencontainers.image.source="${SOURCE}" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}"

COPY bin/image/ca-certificates.crt /etc/ssl/certs/ca-certificates.crt
COPY bin/image/authgate /authgate

# In a container the listeners must not be on loopback only (authgate's own
# defaults are 127.0.0.1:...). Each is still overridden by the environment.
ENV LISTEN_ADDR=:8086 \
    ADMIN_ADDR=:9086 \
    METRICS_ADDR=:9090
EXPOSE 8086 9086 9090

# A numeric user: there is no /etc/passwd. 65532 is the usual "nonroot".
USER 65532:65532
ENTRYPOINT ["/authgate"]
