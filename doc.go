// Package ownchat is the root of the ownChat module: a self-hosted XMPP
// server for companies. The server binary is cmd/xmppd; see README.md and
// ARCHITECTURE.md. This package holds no code, only the architecture test
// that enforces the import rules.
package ownchat
