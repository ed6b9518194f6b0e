module example.com/depmain

go 1.24.0

tool github.com/tklauser/numcpus/cmd/numcpus

require (
	github.com/tklauser/numcpus v0.11.0 // indirect
	golang.org/x/sys v0.38.0 // indirect
)
