package e2e

import (
	"strings"
	"testing"
	"time"
)

const (
	pepDeviceList = "eu.siacs.conversations.axolotl.devicelist"
	pepTune       = "http://jabber.org/protocol/tune"
)

// pepOnline logs user in with slixmpp's xep_0163/xep_0115: its caps ask for
// NODE+notify of nodes; then roster and presence, as a client starts.
func (cs *coreServer) pepOnline(t *testing.T, user, resource string, nodes ...string) *Slix {
	t.Helper()
	s := StartSlix(t, SlixOptions{JID: user + "@" + domain, Password: user + "-pw", Port: cs.C2S,
		NoVerify: true, Resource: resource})
	s.WaitSession(t)
	s.MustDo(t, map[string]any{"cmd": "pep_interest", "nodes": nodes})
	s.MustDo(t, map[string]any{"cmd": "roster_get"})
	s.MustDo(t, map[string]any{"cmd": "presence"})
	return s
}

// isPEPEvent matches a headline notification from owner about node whose
// XML contains want.
func isPEPEvent(owner, node, want string) func(Event) bool {
	return func(e Event) bool {
		x := e.Str("xml")
		return e.Name() == "message" && e.Str("from") == owner && e.Str("type") == "headline" &&
			strings.Contains(x, "http://jabber.org/protocol/pubsub#event") && strings.Contains(x, node) && strings.Contains(x, want)
	}
}

// TestPEPSlixmpp: two slixmpp clients (alice and bob are colleagues, so
// presence subscribers of each other): alice publishes an OMEMO device list
// with access model open through publish-options and a tune; bob, whose
// caps ask for both, is notified and fetches the items; carol, no contact,
// may read the open node only; a session of bob that comes online later
// gets the last tune (XEP-0163 §4.3.3).
func TestPEPSlixmpp(t *testing.T) {
	requireSlixmpp(t)
	cs := startCore(t, "")
	aliceBare := "alice@" + domain
	alice := cs.pepOnline(t, "alice", "phone", pepDeviceList, pepTune)
	bob := cs.pepOnline(t, "bob", "laptop", pepDeviceList, pepTune)
	carol := cs.pepOnline(t, "carol", "pc", pepDeviceList, pepTune)

	devices := `<list xmlns='eu.siacs.conversations.axolotl'><device id='424242'/></list>`
	res := alice.MustDo(t, map[string]any{"cmd": "pep_publish", "node": pepDeviceList, "item_id": "current", "xml": devices,
		"options": map[string]string{"pubsub#access_model": "open"}})
	if res.Str("id") != "current" {
		t.Errorf("publish result %v", res)
	}
	bob.Expect(t, isPEPEvent(aliceBare, pepDeviceList, "424242"), eventTimeout)
	alice.Expect(t, isPEPEvent(aliceBare, pepDeviceList, "424242"), eventTimeout)

	for _, s := range []*Slix{bob, carol} {
		items := s.MustDo(t, map[string]any{"cmd": "pep_items", "jid": aliceBare, "node": pepDeviceList})
		if x := items.Str("xml"); !strings.Contains(x, "424242") || !strings.Contains(x, "current") {
			t.Errorf("%s reads the open device list: %v", s.JID, items)
		}
	}

	// publish-options that contradict the node: precondition-not-met.
	_, err := alice.Do(map[string]any{"cmd": "pep_publish", "node": pepDeviceList, "item_id": "current", "xml": devices,
		"options": map[string]string{"pubsub#access_model": "whitelist"}})
	if ce, ok := err.(*CommandError); !ok || ce.Condition != "conflict" {
		t.Errorf("contradicting publish-options: %v, want conflict", err)
	}

	// A tune with the default access model (presence).
	alice.MustDo(t, map[string]any{"cmd": "pep_publish", "node": pepTune, "item_id": "t1",
		"xml": `<tune xmlns='http://jabber.org/protocol/tune'><artist>Gentle Giant</artist><title>Proclamation</title></tune>`})
	bob.Expect(t, isPEPEvent(aliceBare, pepTune, "Proclamation"), eventTimeout)
	carol.Never(t, isPEPEvent(aliceBare, pepTune, "Proclamation"), 300*time.Millisecond)
	items := bob.MustDo(t, map[string]any{"cmd": "pep_items", "jid": aliceBare, "node": pepTune})
	if !strings.Contains(items.Str("xml"), "Gentle Giant") {
		t.Errorf("bob's tune items %v", items)
	}
	_, err = carol.Do(map[string]any{"cmd": "pep_items", "jid": aliceBare, "node": pepTune})
	if ce, ok := err.(*CommandError); !ok || ce.Condition != "not-authorized" {
		t.Errorf("carol reads the presence-only tune: %v, want not-authorized", err)
	}

	// A session that becomes available later gets the last item.
	late := cs.pepOnline(t, "bob", "late", pepTune)
	ev := late.Expect(t, isPEPEvent(aliceBare, pepTune, "Proclamation"), eventTimeout)
	if ev.Str("delay") == "" {
		t.Errorf("last item without delay: %v", ev)
	}
	late.Never(t, isPEPEvent(aliceBare, pepDeviceList, "424242"), 300*time.Millisecond) // no +notify for it

	// Retract with notify reaches the subscriber.
	alice.MustDo(t, map[string]any{"cmd": "pep_retract", "node": pepTune, "item_id": "t1", "notify": true})
	bob.Expect(t, func(e Event) bool {
		return isPEPEvent(aliceBare, pepTune, "retract")(e) && strings.Contains(e.Str("xml"), "t1")
	}, eventTimeout)
}
