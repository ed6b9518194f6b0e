module github.com/gotap-dev/gotap/crates/gotap-ebpf/tests/go

go 1.19
