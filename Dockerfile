# The operator image: the production binary (no sandbox, no test infrastructure) on a minimal,
# non-root base. The chart's default image is built from this file:
#   docker build -t ghcr.io/patchbay-dev/patchbay:0.1.0 .
# Pinned by tag here; pin by digest in your own registry mirror.
ARG RUST_VERSION=1.95

FROM docker.io/library/rust:${RUST_VERSION}-bookworm AS build
WORKDIR /src
# Dependencies first, so that a source change rebuilds only patchbay itself.
COPY Cargo.toml Cargo.lock ./
COPY testkit/Cargo.toml testkit/Cargo.toml
RUN mkdir -p src benches testkit/src \
    && echo 'fn main() {}' > src/main.rs && touch src/lib.rs testkit/src/lib.rs \
    && echo 'fn main() {}' > benches/tokens.rs \
    && cargo build --release --locked --no-default-features --bin patchbay \
    && rm -rf src benches testkit/src
COPY src src
COPY benches benches
COPY testkit/src testkit/src
RUN touch src/main.rs src/lib.rs \
    && cargo build --release --locked --no-default-features --bin patchbay \
    && cp target/release/patchbay /patchbay

# glibc and CA certificates, no shell, no package manager; runs as 65532 (nonroot).
FROM gcr.io/distroless/cc-debian12:nonroot
COPY --from=build /patchbay /usr/local/bin/patchbay
USER 65532:65532
EXPOSE 8080
ENTRYPOINT ["/usr/local/bin/patchbay"]
CMD ["run", "--log-format=json"]
