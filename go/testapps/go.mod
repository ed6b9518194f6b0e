module github.com/gotap-dev/gotap/go/testapps

go 1.19
