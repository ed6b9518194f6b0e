package app

type Order struct {
	ID    int
	Items []string // items
}

type Empty struct{}

type Pair[K comparable, V any] struct{ K K; V V }

func New() *Order { return &Order{ID: 1} }
