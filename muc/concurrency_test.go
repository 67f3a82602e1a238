package muc

import (
	"fmt"
	"sync"
	"testing"
)

// TestConcurrentRooms drives several rooms from many goroutines at once —
// joins, messages, nick changes, leaves, sessions ending, disco — so that
// -race sees the locking, and a deadlock shows as a timeout.
func TestConcurrentRooms(t *testing.T) {
	e := newEnv(t, openStore(t), nil)
	rooms := []string{"r0@" + svcJID, "r1@" + svcJID, "r2@" + svcJID}
	for _, r := range rooms {
		e.send(alice, "<presence to='"+r+"/Alice'><x xmlns='"+nsMUC+"'/></presence>")
		e.send(alice, "<iq to='"+r+"' type='set' id='c'><query xmlns='"+nsOwner+"'><x xmlns='jabber:x:data' type='submit'>"+
			field1("persistentroom", "1")+"</x></query></iq>")
	}
	var wg sync.WaitGroup
	for g := 0; g < 12; g++ {
		wg.Add(1)
		go func(g int) {
			defer wg.Done()
			user := fmt.Sprintf("u%d@example.com/r", g)
			for i := 0; i < 20; i++ {
				r := rooms[(g+i)%len(rooms)]
				nick := fmt.Sprintf("n%d", g)
				e.send(user, "<presence to='"+r+"/"+nick+"'><x xmlns='"+nsMUC+"'/></presence>")
				e.send(user, "<message to='"+r+"' type='groupchat'><body>hi</body></message>")
				e.send(user, "<presence to='"+r+"/"+nick+"x'/>")
				e.send(user, "<message to='"+r+"/Alice' type='chat'><body>pm</body></message>")
				if i%3 == 0 {
					e.s.UserGone(user)
				} else {
					e.send(user, "<presence to='"+r+"/"+nick+"x' type='unavailable'/>")
				}
				e.send(user, "<iq to='"+svcJID+"' type='get' id='d'><query xmlns='"+nsDiscoItems+"'/></iq>")
			}
		}(g)
	}
	wg.Wait()
	e.s.waitGone()
	for _, r := range rooms {
		e.f.reset()
		e.send(alice, "<presence to='"+r+"/Alice' type='unavailable'/>")
	}
	e.s.mu.Lock()
	defer e.s.mu.Unlock()
	if len(e.s.joined) != 0 || len(e.s.rooms) != 0 {
		t.Errorf("after everyone left: %d sessions tracked, %d rooms loaded", len(e.s.joined), len(e.s.rooms))
	}
}
