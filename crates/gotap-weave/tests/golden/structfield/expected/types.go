//line input/types.go:1
package app

type Order struct {
	ID    int
	Items []string // items

//line gotap-rule-order-span.go:1
gotapSpan any
gotapStarted int64 `json:"-"`
/*line input/types.go:6:1*/}

type Empty struct{
//line gotap-rule-empty.go:1
gotapN int
/*line input/types.go:8:19*/}

type Pair[K comparable, V any] struct{ K K; V V 
//line gotap-rule-generic.go:1
gotapKeys map[K]V
/*line input/types.go:10:49*/}

func New() *Order { return &Order{ID: 1} }
