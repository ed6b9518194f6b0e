module example.com/gotap/greeting

go 1.19
