#!/usr/bin/env bash
# Installs what cilium-ts needs on a fresh Debian machine: system packages, node modules, and
# kube-apiserver, kubectl and etcd built from their Go modules. Idempotent: tool builds are cached
# by version under $CILIUM_TS_CACHE (outside the repo), so a second run takes seconds.
set -euo pipefail

KUBERNETES_VERSION="${KUBERNETES_VERSION:-v1.36.3}"
ETCD_VERSION="${ETCD_VERSION:-v3.6.16}"
CILIUM_VERSION="${CILIUM_VERSION:-v1.20.2}"
CRICTL_VERSION="${CRICTL_VERSION:-v1.37.0}"
CNI_VERSION="${CNI_VERSION:-v1.3.1}"
CNI_PLUGINS_VERSION="${CNI_PLUGINS_VERSION:-v1.10.0}"
CACHE="${CILIUM_TS_CACHE:-$HOME/.cache/cilium-ts}"
REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
APT_PACKAGES=(prometheus clang llvm libbpf-dev bpftool iproute2 iperf3 iptables libelf-dev openssl util-linux iputils-ping
  containerd runc busybox-static gcc libc6-dev)

KUBERNETES_BINARIES=(kube-apiserver kubectl kubelet kube-scheduler kube-controller-manager)

log() { printf '[install] %s\n' "$*" >&2; }

require_go() {
  command -v go >/dev/null || { log "go is not on PATH: the tool builds need Go >= 1.25"; exit 1; }
}

install_apt() {
  local missing=()
  for p in "${APT_PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
  done
  if [ "${#missing[@]}" -gt 0 ]; then
    log "apt-get install ${missing[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
  fi
}

# k8s.io/kubernetes maps its staging modules to v0.0.0 with replace directives that do not apply
# to a consumer, so a throwaway module replaces each one with its published v0.X.Y tag.
build_kubernetes() {
  local out="$CACHE/kubernetes-$KUBERNETES_VERSION"
  local missing=()
  for b in "${KUBERNETES_BINARIES[@]}"; do [ -x "$out/$b" ] || missing+=("$b"); done
  if [ "${#missing[@]}" -eq 0 ]; then return; fi
  log "building ${missing[*]} $KUBERNETES_VERSION (first run only)"
  local work; work="$(mktemp -d)"
  trap 'rm -rf "$work"' RETURN
  local staging="v0${KUBERNETES_VERSION#v1}"
  local gomod
  gomod="$(cd "$work" && go mod download -json "k8s.io/kubernetes@$KUBERNETES_VERSION" | sed -n 's/.*"GoMod": "\(.*\)",*/\1/p')"
  {
    echo "module cilium-ts/tools/kubernetes"
    echo "go 1.25"
    echo "require k8s.io/kubernetes $KUBERNETES_VERSION"
    sed -n 's#^\s*\(k8s.io/[a-z0-9-]*\) => ./staging/src/.*#replace \1 => \1 '"$staging"'#p' "$gomod"
  } >"$work/go.mod"
  { echo 'package tools'; echo 'import ('
    for b in "${KUBERNETES_BINARIES[@]}"; do echo " _ \"k8s.io/kubernetes/cmd/$b\""; done
    echo ')'; } >"$work/tools.go"
  local minor="${KUBERNETES_VERSION#v1.}"; minor="${minor%%.*}"
  local ldflags="-s -w -X k8s.io/component-base/version.gitVersion=$KUBERNETES_VERSION -X k8s.io/component-base/version.gitMajor=1 -X k8s.io/component-base/version.gitMinor=$minor"
  (cd "$work" && GOFLAGS=-mod=mod go mod tidy
   mkdir -p "$out"
   for b in "${missing[@]}"; do
     GOFLAGS=-mod=mod go build -trimpath -ldflags "$ldflags" -o "$out/$b.tmp" "k8s.io/kubernetes/cmd/$b"
     mv "$out/$b.tmp" "$out/$b"
   done)
}

# The etcd root module carries replace directives too; its server module builds as a dependency.
build_etcd() {
  local out="$CACHE/etcd-$ETCD_VERSION"
  if [ -x "$out/etcd" ]; then return; fi
  log "building etcd $ETCD_VERSION (first run only)"
  local work; work="$(mktemp -d)"
  trap 'rm -rf "$work"' RETURN
  printf 'module cilium-ts/tools/etcd\ngo 1.25\nrequire go.etcd.io/etcd/server/v3 %s\n' "$ETCD_VERSION" >"$work/go.mod"
  printf 'package main\nimport (\n "os"\n "go.etcd.io/etcd/server/v3/etcdmain"\n)\nfunc main() { etcdmain.Main(os.Args) }\n' >"$work/main.go"
  (cd "$work" && GOFLAGS=-mod=mod go mod tidy >/dev/null && mkdir -p "$out.tmp" &&
   go build -trimpath -ldflags "-s -w" -o "$out.tmp/etcd" .)
  rm -rf "$out"; mv "$out.tmp" "$out"
}

# Plain `go install` for modules without replace directives; each lands in its own versioned dir.
go_install() {
  local name="$1" version="$2" pkg="$3"
  local out="$CACHE/$name-$version"
  if [ -x "$out/$(basename "$pkg")" ]; then return; fi
  log "building $(basename "$pkg") $version (first run only)"
  mkdir -p "$out.tmp" && GOBIN="$out.tmp" go install -trimpath -ldflags "-s -w" "$pkg@$version"
  mkdir -p "$out" && mv "$out.tmp"/* "$out/" && rmdir "$out.tmp"
}

build_cni_tools() {
  go_install crictl "$CRICTL_VERSION" sigs.k8s.io/cri-tools/cmd/crictl
  go_install cnitool "$CNI_VERSION" github.com/containernetworking/cni/cnitool
  local p
  for p in main/bridge ipam/host-local main/loopback; do
    go_install cni-plugins "$CNI_PLUGINS_VERSION" "github.com/containernetworking/plugins/plugins/$p"
  done
}

# The upstream clients we test against (cilium-dbg, hubble). cilium's go.mod replaces
# controller-tools with its fork and pins a gobgp pseudo-version the proxy does not serve.
build_cilium_clients() {
  local out="$CACHE/cilium-$CILIUM_VERSION"
  if [ -x "$out/cilium-dbg" ] && [ -x "$out/hubble" ]; then return; fi
  log "building cilium-dbg and hubble $CILIUM_VERSION (first run only)"
  local work; work="$(mktemp -d)"
  trap 'rm -rf "$work"' RETURN
  local gomod
  gomod="$(cd "$work" && go mod download -json "github.com/cilium/cilium@$CILIUM_VERSION" | sed -n 's/.*"GoMod": "\(.*\)",*/\1/p')"
  {
    echo "module cilium-ts/tools/cilium"
    echo "go 1.26.0"
    echo "require github.com/cilium/cilium $CILIUM_VERSION"
    grep '^replace ' "$gomod"
    echo "replace github.com/osrg/gobgp/v4 => github.com/osrg/gobgp/v4 v4.7.0"
  } >"$work/go.mod"
  printf 'package tools\nimport (\n _ "github.com/cilium/cilium/cilium-dbg"\n _ "github.com/cilium/cilium/hubble"\n)\n' >"$work/tools.go"
  (cd "$work" && GOFLAGS=-mod=mod go mod tidy >/dev/null && mkdir -p "$out.tmp" &&
   GOFLAGS=-mod=mod go build -trimpath -ldflags "-s -w" -o "$out.tmp/cilium-dbg" github.com/cilium/cilium/cilium-dbg &&
   GOFLAGS=-mod=mod go build -trimpath -ldflags "-s -w" -o "$out.tmp/hubble" github.com/cilium/cilium/hubble)
  rm -rf "$out"; mv "$out.tmp" "$out"
}

link_tools() {
  mkdir -p "$REPO/.local/bin"
  local b
  for b in "${KUBERNETES_BINARIES[@]}"; do ln -sf "$CACHE/kubernetes-$KUBERNETES_VERSION/$b" "$REPO/.local/bin/$b"; done
  ln -sf "$CACHE/crictl-$CRICTL_VERSION/crictl" "$REPO/.local/bin/crictl"
  ln -sf "$CACHE/cnitool-$CNI_VERSION/cnitool" "$REPO/.local/bin/cnitool"
  ln -sf "$CACHE/cilium-$CILIUM_VERSION/cilium-dbg" "$REPO/.local/bin/cilium-dbg"
  ln -sf "$CACHE/cilium-$CILIUM_VERSION/hubble" "$REPO/.local/bin/hubble-upstream"
  # The reference plugins (bench:cni's peer) live in their own CNI bin dir.
  ln -sfn "$CACHE/cni-plugins-$CNI_PLUGINS_VERSION" "$REPO/.local/cni-plugins"
  ln -sf "$CACHE/etcd-$ETCD_VERSION/etcd" "$REPO/.local/bin/etcd"
}

# npm ci runs when package-lock.json differs from the one the install was made from (a stamp of
# its hash, not file times: a new clone or worktree has a newer lock file but the same content).
# A node_modules that is a symlink belongs to another checkout: npm ci would empty it there.
install_node_modules() {
  local stamp="$REPO/node_modules/.cilium-ts-lock.sha256" want
  want=$(sha256sum "$REPO/package-lock.json" | cut -d' ' -f1)
  if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then return 0; fi
  if [ -L "$REPO/node_modules" ]; then
    echo "install-tools: $REPO/node_modules is a symlink to another checkout's install made from a different package-lock.json; not running npm ci there" >&2
    exit 1
  fi
  log "npm ci"
  (cd "$REPO" && npm ci --no-audit --no-fund --loglevel=error)
  echo "$want" >"$stamp"
}

started=$SECONDS
case "${1:-all}" in
  apt) install_apt ;;
  tools) require_go; build_etcd; build_kubernetes; build_cni_tools; build_cilium_clients; link_tools ;;
  node) install_node_modules ;;
  all) install_apt; install_node_modules; require_go; build_etcd; build_kubernetes; build_cni_tools; build_cilium_clients; link_tools ;;
  *) echo "usage: $0 [all|apt|tools|node]" >&2; exit 2 ;;
esac
# A cached run stays silent; one that installed or built something says how long it took.
elapsed=$((SECONDS - started))
if [ "$elapsed" -ge 2 ]; then log "done in ${elapsed}s"; fi
