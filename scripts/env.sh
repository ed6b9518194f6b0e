# Sourced by gotap's scripts and tests: where each Go toolchain lives.
# GOTOOLCHAIN=local keeps each `go` from switching itself to another version.
export GOTOOLCHAIN=local
export GO119=/usr/lib/go-1.19/bin/go
export GO126="$(GOTOOLCHAIN=local command -v go)"
GO127="$(GOTOOLCHAIN=go1.27.3 go env GOROOT 2>/dev/null)/bin/go"
export GO127
export GOFLAGS="${GOFLAGS:-} -modcacherw"
