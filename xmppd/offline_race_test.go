package xmppd

import (
	"fmt"
	"sync"
	"testing"
	"time"
)

// TestMessageDuringLogin: a message to the bare JID sent while the
// recipient's session sends its initial presence reaches that session,
// live or from the offline store, never waiting for the next login (the
// sender saw no available session, the session read the store before the
// message was in it). Many rounds, each with both sides released at once.
func TestMessageDuringLogin(t *testing.T) {
	ts := newTestServer(t)
	alice := ts.online(t, "alice", "a", 0)
	for i := range 150 {
		bob := ts.login(t, "bob", fmt.Sprint("r", i))
		body := fmt.Sprint("during login ", i)
		msg := []byte(`<message type='chat' to='bob@` + testDomain + `'><body>` + body + `</body></message>`)
		var wg sync.WaitGroup
		start := make(chan struct{})
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			alice.nc.Write(msg) // an error shows as the missing message below
		}()
		close(start)
		bob.send(`<presence/>`)
		wg.Wait()
		bob.waitFor("round "+fmt.Sprint(i)+" message", hasBody(body))
		bob.nc.Close()
		// The next round starts without a session of bob: one still
		// closing would take the message (and lose it, without XEP-0198).
		for len(ts.router.sessionsOf("bob")) > 0 {
			time.Sleep(time.Millisecond)
		}
	}
}
