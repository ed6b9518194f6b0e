module gotap.dev/arena/legacy

go 1.19
