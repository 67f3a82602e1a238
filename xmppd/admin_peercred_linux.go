package xmppd

import (
	"fmt"
	"net"
	"os/user"
	"strconv"
	"syscall"
)

// peerActor names the process at the other end of an admin connection by
// the uid the kernel recorded when it connected (SO_PEERCRED), so an audit
// record says who ran a command even if the client lies.
func peerActor(nc net.Conn) string {
	uc, ok := nc.(*net.UnixConn)
	if !ok {
		return "unknown (not a unix socket)"
	}
	raw, err := uc.SyscallConn()
	if err != nil {
		return "unknown (" + err.Error() + ")"
	}
	var cred *syscall.Ucred
	var cerr error
	if err := raw.Control(func(fd uintptr) {
		cred, cerr = syscall.GetsockoptUcred(int(fd), syscall.SOL_SOCKET, syscall.SO_PEERCRED)
	}); err != nil {
		cerr = err
	}
	if cerr != nil {
		return "unknown (" + cerr.Error() + ")"
	}
	return UIDActor(cred.Uid)
}

// UIDActor formats a uid the way audit records name people:
// "uid 1000 (alice)", or "uid 1000" when the name is unknown.
func UIDActor(uid uint32) string {
	id := strconv.FormatUint(uint64(uid), 10)
	if u, err := user.LookupId(id); err == nil && u.Username != "" {
		return fmt.Sprintf("uid %s (%s)", id, u.Username)
	}
	return "uid " + id
}
