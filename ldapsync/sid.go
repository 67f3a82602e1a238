package ldapsync

import (
	"encoding/binary"
	"strconv"
)

// sidAttr holds an AD object's security identifier (MS-DTYP §2.4.2.2).
const sidAttr = "objectSid"

// sidString renders a binary SID as "S-1-5-21-x-y-z-rid", or "" when b
// is not one: revision (1 byte), sub-authority count (1), identifier
// authority (6, big-endian), sub-authorities (4 each, little-endian).
func sidString(b []byte) string {
	if len(b) < 8 || b[0] != 1 || len(b) != 8+4*int(b[1]) {
		return ""
	}
	var auth uint64
	for _, c := range b[2:8] {
		auth = auth<<8 | uint64(c)
	}
	out := make([]byte, 0, 16+11*int(b[1]))
	out = append(out, "S-1-"...)
	out = strconv.AppendUint(out, auth, 10)
	for i := 8; i < len(b); i += 4 {
		out = append(out, '-')
		out = strconv.AppendUint(out, uint64(binary.LittleEndian.Uint32(b[i:])), 10)
	}
	return string(out)
}

// primaryGroupSID is the SID of a user's primary group: the user's own
// SID with its last sub-authority (the user's RID) replaced by
// primaryGroupID, the group's RID in the same domain.
func primaryGroupSID(userSID []byte, rid string) string {
	if _, err := strconv.ParseUint(rid, 10, 32); err != nil || len(userSID) < 12 {
		return ""
	}
	sid := sidString(userSID)
	if sid == "" {
		return ""
	}
	for i := len(sid) - 1; i >= 0; i-- {
		if sid[i] == '-' {
			return sid[:i+1] + rid
		}
	}
	return ""
}
