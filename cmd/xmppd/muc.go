package main

import (
	"fmt"
	"log/slog"

	"github.com/ownchat/ownchat/conf"
	"github.com/ownchat/ownchat/muc"
	"github.com/ownchat/ownchat/store"
	"github.com/ownchat/ownchat/xmppd"
)

// Defaults of the [muc] section until conf has it (issue 5): the service
// at conference.<domain>, everyone may create rooms, 20 messages of history.
const (
	mucSubdomain   = "conference"
	mucHistorySize = 20
)

// setupMUC creates the multi-user chat service and registers it as the
// component <subdomain>.<domain>.
func setupMUC(cfg *conf.Config, srv *xmppd.Server, st *store.Store, log *slog.Logger) (*muc.Service, error) {
	domain := mucSubdomain + "." + cfg.Domain
	svc, err := muc.New(muc.Config{
		Domain:      domain,
		Name:        "Chatrooms",
		HistorySize: mucHistorySize,
		// MayCreate: nil lets everyone create rooms; the [muc] creation
		// policy (everyone / group / admins) will map to this function.
	}, st, srv, log.With("component", domain))
	if err != nil {
		return nil, fmt.Errorf("multi-user chat: %w", err)
	}
	srv.AddComponent(domain, "Chatrooms", svc)
	return svc, nil
}
