package main

import (
	"context"

	"github.com/ownchat/ownchat/staticdir"
	"github.com/ownchat/ownchat/xmppd"
)

// staticDirectory adapts staticdir to the interface the server consumes;
// the packages do not import each other.
type staticDirectory struct{ d *staticdir.Directory }

func (s staticDirectory) Authenticate(ctx context.Context, username, password string) error {
	return s.d.Authenticate(ctx, username, password)
}

func (s staticDirectory) Person(username string) (xmppd.Person, bool) {
	p, ok := s.d.Lookup(username)
	return xmppd.Person{Username: p.Username, DisplayName: p.DisplayName, Groups: p.Groups}, ok
}

func (s staticDirectory) Colleagues(username string) []xmppd.Person {
	cs := s.d.Colleagues(username)
	out := make([]xmppd.Person, len(cs))
	for i, p := range cs {
		out[i] = xmppd.Person{Username: p.Username, DisplayName: p.DisplayName, Groups: p.Groups}
	}
	return out
}
