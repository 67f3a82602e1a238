//go:build !linux

package xmppd

import (
	"fmt"
	"net"
	"os/user"
	"strconv"
)

// peerActor: SO_PEERCRED is Linux only; elsewhere the actor is unknown
// rather than taken from the client's word.
func peerActor(nc net.Conn) string { return "unknown (no SO_PEERCRED)" }

// UIDActor formats a uid the way audit records name people.
func UIDActor(uid uint32) string {
	id := strconv.FormatUint(uint64(uid), 10)
	if u, err := user.LookupId(id); err == nil && u.Username != "" {
		return fmt.Sprintf("uid %s (%s)", id, u.Username)
	}
	return "uid " + id
}
