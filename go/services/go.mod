module github.com/gotap-dev/gotap/go/services

// 1.19 so the oldest supported toolchain builds it; routes_go122.go turns Go ≥ 1.22 patterns on
// with a //go:debug directive (this go line alone would default GODEBUG httpmuxgo121=1).
go 1.19
