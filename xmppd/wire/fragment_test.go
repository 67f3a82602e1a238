package wire

import "testing"

func TestParseElement(t *testing.T) {
	tests := []struct {
		in      string
		wantErr bool
		local   string
	}{
		{"<message to='a@b'><body>hi</body></message>", false, "message"},
		{"<storage xmlns='storage:bookmarks'><conference jid='r@c'/></storage>", false, "storage"},
		{"", true, ""},
		{"<message>", true, ""},
		{"<a/><b/>", true, ""},
		{"text", true, ""},
	}
	for _, tc := range tests {
		el, err := ParseElement([]byte(tc.in))
		if (err != nil) != tc.wantErr {
			t.Errorf("ParseElement(%q): err %v, want error %v", tc.in, err, tc.wantErr)
			continue
		}
		if err == nil && el.Local != tc.local {
			t.Errorf("ParseElement(%q) = <%s/>, want <%s/>", tc.in, el.Local, tc.local)
		}
	}
	// What AppendXML writes comes back the same.
	orig := New("jabber:client", "message", "to", "x@y")
	orig.Add(New("jabber:client", "body").AddText("a < b & c"))
	b := orig.AppendXML(nil, "jabber:client")
	el, err := ParseElement(b)
	if err != nil {
		t.Fatal(err)
	}
	if got := el.AppendXML(nil, "jabber:client"); string(got) != string(b) {
		t.Errorf("round trip: %s, want %s", got, b)
	}
}
