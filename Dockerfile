# syntax=docker/dockerfile:1
#
# Build:  docker build --build-arg VERSION=$(git describe --tags --always --dirty) -t microapps .
# Run:    see deploy/docker-compose.yml (local trial) and deploy/kubernetes/.
#
# The final image is `scratch` plus three things the binary needs: CA
# certificates (HTTPS to Qualtrics, SMTP and the OIDC issuer), an /etc/passwd
# naming the unprivileged user 65532, and an empty /tmp. Time zone data is
# compiled in (-tags timetzdata). Nothing else: no shell, no package manager,
# no libc, so there is nothing in it to patch but the binary itself. It also
# keeps every base image on the one public Go image the builder already uses.

ARG GO_VERSION=1.26

FROM --platform=$BUILDPLATFORM golang:${GO_VERSION} AS build
WORKDIR /src
ENV CGO_ENABLED=0 GOFLAGS=-mod=readonly

# Dependencies first, so a source change does not download them again.
COPY go.mod go.sum ./
RUN --mount=type=cache,target=/go/pkg/mod \
    go mod download

COPY . .
ARG TARGETOS
ARG TARGETARCH
ARG VERSION=dev
RUN --mount=type=cache,target=/go/pkg/mod \
    --mount=type=cache,target=/root/.cache/go-build \
    GOOS=${TARGETOS} GOARCH=${TARGETARCH} \
    go build -trimpath -tags timetzdata \
      -ldflags "-s -w -X main.version=${VERSION}" \
      -o /out/microapps ./cmd/microapps

# The root file system of the final image.
RUN mkdir -p /rootfs/etc/ssl/certs /rootfs/tmp \
 && chmod 1777 /rootfs/tmp \
 && cp /etc/ssl/certs/ca-certificates.crt /rootfs/etc/ssl/certs/ \
 && echo 'nonroot:x:65532:65532:nonroot:/nonexistent:/sbin/nologin' > /rootfs/etc/passwd \
 && echo 'nonroot:x:65532:' > /rootfs/etc/group

FROM scratch
COPY --from=build /rootfs/ /
COPY --from=build /out/microapps /microapps
# Numeric, so Kubernetes' runAsNonRoot can verify it without reading /etc/passwd.
USER 65532:65532
EXPOSE 8080
# No HEALTHCHECK: orchestrators probe /livez and /readyz themselves, and there
# is no shell or curl in the image to run one with.
ENTRYPOINT ["/microapps"]
CMD ["serve"]
