module gotap.dev/h2svc

go 1.26.0
