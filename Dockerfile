# The cellwarden operator image: a static-ish Rust binary on a distroless, non-root base.
# Built with `scripts/build-image.sh` (buildah, no Docker engine). This project's build machines
# reach no registry, so there the script builds the same runtime layout from scratch instead.
FROM rust:1.95-bookworm AS build
WORKDIR /src
COPY . .
RUN cargo build --release --locked --bin cellwarden

FROM gcr.io/distroless/cc-debian12:nonroot
COPY --from=build /src/target/release/cellwarden /usr/local/bin/cellwarden
USER 65532:65532
EXPOSE 4318 8081
ENTRYPOINT ["/usr/local/bin/cellwarden"]
CMD ["run", "--config", "/etc/cellwarden/cellwarden.yaml"]
