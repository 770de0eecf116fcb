#!/usr/bin/env bash
# helm for the chart's tests: built from its Go module into .cache/bin/helm, once.
# Idempotent: does nothing when .cache/bin/helm is already this version. The module and its
# dependencies land in Go's own module cache; the ldflags are upstream's (Makefile): the
# version `helm version` reports and the Kubernetes version `helm template` assumes by
# default (client-go's minor, as upstream derives it).
set -euo pipefail
cd "$(dirname "$0")/.."

HELM_VERSION=v3.22.0
KUBE_MINOR=37 # k8s.io/client-go v0.37 in helm v3.22.0's go.mod
bin=.cache/bin/helm

built=$( [ -x "$bin" ] && go version -m "$bin" | awk '$1 == "mod" && $2 == "helm.sh/helm/v3" { print $3 }' || true)
if [ "$built" = "$HELM_VERSION" ]; then
    exit 0
fi
echo "ensure-helm: building helm $HELM_VERSION into $bin (a few minutes, once)"
ldflags="-s -w -X helm.sh/helm/v3/internal/version.version=$HELM_VERSION"
for package in pkg/lint/rules pkg/chartutil; do
    ldflags+=" -X helm.sh/helm/v3/$package.k8sVersionMajor=1"
    ldflags+=" -X helm.sh/helm/v3/$package.k8sVersionMinor=$KUBE_MINOR"
done
GOBIN="$PWD/.cache/bin" CGO_ENABLED=0 GOFLAGS=-buildvcs=false \
    go install -trimpath -ldflags "$ldflags" "helm.sh/helm/v3/cmd/helm@$HELM_VERSION"
