package ldapsync

import "testing"

func TestSID(t *testing.T) {
	// S-1-5-21-1004336348-1177238915-682003330-1103, as AD stores it.
	user := []byte{1, 5, 0, 0, 0, 0, 0, 5,
		21, 0, 0, 0,
		0xdc, 0xf4, 0xdc, 0x3b,
		0x83, 0x3d, 0x2b, 0x46,
		0x82, 0x8b, 0xa6, 0x28,
		0x4f, 0x04, 0, 0}
	if got := sidString(user); got != "S-1-5-21-1004336348-1177238915-682003330-1103" {
		t.Errorf("sidString = %q", got)
	}
	tests := []struct {
		sid  []byte
		rid  string
		want string
	}{
		{user, "513", "S-1-5-21-1004336348-1177238915-682003330-513"},
		{user, "", ""},
		{user, "-1", ""},
		{user, "x", ""},
		{user[:len(user)-1], "513", ""}, // truncated
		{[]byte{1, 1, 0, 0, 0, 0, 0, 5, 1}, "513", ""}, // count says more than there is
		{nil, "513", ""},
	}
	for _, tc := range tests {
		if got := primaryGroupSID(tc.sid, tc.rid); got != tc.want {
			t.Errorf("primaryGroupSID(%x, %q) = %q, want %q", tc.sid, tc.rid, got, tc.want)
		}
	}
}
