module github.com/gotap-dev/gotap/go/testapps

go 1.19

require (
	example.com/gotap/greeting v0.0.0
	github.com/google/uuid v1.6.0
	golang.org/x/text v0.14.0
)

// Another version of x/text and a local directory: buildinfo shows both kinds of `=>` lines.
replace golang.org/x/text => golang.org/x/text v0.13.0

replace example.com/gotap/greeting => ./greeting
