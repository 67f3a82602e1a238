// Package ldapsync makes an LDAP directory (Active Directory, OpenLDAP) the
// source of ownChat's accounts: who may log in and with which password,
// who sees whom in the shared roster, names, titles and photos.
//
// Logins bind live as the user (the password is never stored or cached),
// so a user deleted or disabled in the directory cannot log in from that
// moment. Everything else is served from a snapshot that Sync and Run
// refresh with paged searches (RFC 2696) and keep in the store, so the
// server starts and serves rosters while the directory is unreachable.
// Each sync returns a Diff that tells the server whose sessions to end and
// whose rosters to push.
//
// The package knows nothing of XMPP beyond usernames: cmd/xmppd adapts it
// to the server's Directory interface.
package ldapsync

import (
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ownchat/ownchat/store"
)

// ErrBadCredentials is returned for an unknown, disabled or locked user
// and for a wrong password alike, so a client cannot tell them apart.
var ErrBadCredentials = errors.New("ldapsync: bad credentials")

// Directory is an LDAP directory and its last snapshot; safe for
// concurrent use. Reads (Lookup, Colleagues, Resolve) never touch the
// network; Authenticate and the syncs do.
type Directory struct {
	s      *settings
	st     *store.Store // nil: nothing persisted (xmppd check, tests)
	log    *slog.Logger
	search *pool // service account: lookups and syncs
	binds  *pool // user binds only

	snap   atomic.Pointer[snapshot]
	syncMu sync.Mutex // one sync at a time; held while onDiff runs
	onDiff atomic.Pointer[func(Diff)]

	memMu     sync.Mutex
	memPhotos map[string]photo // the photos, when st is nil

	warnedAt atomic.Int64 // last "directory unavailable" warning of a login, Unix ns

	stats stats
}

type stats struct {
	syncs, syncFailures            atomic.Uint64
	logins, loginsRefused          atomic.Uint64
	loginsUnavailable, storeErrors atomic.Uint64
	lastErr                        atomic.Pointer[string]
}

// New checks cfg (call cfg.ApplyPreset first) and loads the snapshot kept
// in st, if any, so that the Directory is Ready before its first sync. st
// may be nil: then nothing is kept (for `xmppd check`). log nil means
// slog.Default(). New does not contact the directory.
func New(cfg Config, st *store.Store, log *slog.Logger) (*Directory, error) {
	s, err := cfg.check()
	if err != nil {
		return nil, err
	}
	if log == nil {
		log = slog.Default()
	}
	d := &Directory{s: s, st: st, log: log, memPhotos: map[string]photo{}}
	d.search = newPool(s, log, cfg.BindDN, cfg.BindPassword)
	d.binds = newPool(s, log, "", "")
	if st == nil {
		return d, nil
	}
	b, err := st.Get(kvBucket, kvSnapshot)
	if err != nil {
		return nil, fmt.Errorf("ldapsync: load snapshot: %w", err)
	}
	if b == nil {
		return d, nil
	}
	users, groups, meta, err := decodeSnapshot(b)
	if err != nil {
		// A snapshot this binary cannot read is only a cache of the
		// directory: start as if there were none.
		log.Warn("ldapsync: ignoring the stored directory snapshot", "err", err)
		return d, nil
	}
	sn := build(s, users, groups, meta, time.Now())
	d.snap.Store(sn)
	log.Info("ldapsync: loaded directory snapshot", "users", len(sn.people), "groups", len(sn.groupNames),
		"synced", meta.syncedAt.Format(time.RFC3339))
	return d, nil
}

// Close closes the pooled connections. Stop Run first; calls in flight
// finish or fail, and the Directory must not be used afterwards.
func (d *Directory) Close() error {
	d.search.close()
	d.binds.close()
	return nil
}

// Ready reports whether a snapshot is in place, from a sync or from the
// store: the server answers /healthz with 503 until then.
func (d *Directory) Ready() bool { return d.snap.Load() != nil }

// Lookup returns the user called username (a normalized localpart, not an
// alias) if they exist and may log in. Photo is nil: see Profile.
func (d *Directory) Lookup(username string) (Person, bool) {
	p := d.snap.Load().lookup(username)
	if p == nil {
		return Person{}, false
	}
	return p.Person, true
}

// Profile is Lookup with the photo, read from the store: for vCards
// (XEP-0054), not for hot paths.
func (d *Directory) Profile(username string) (Person, bool, error) {
	p, ok := d.Lookup(username)
	if !ok || p.PhotoHash == "" {
		return p, ok, nil
	}
	ph, found, err := d.loadPhoto(p.PhotoHash)
	if err != nil {
		return p, true, err
	}
	if found {
		p.Photo, p.PhotoType = ph.data, ph.typ
	}
	return p, true, nil
}

// Resolve maps a login name to the username it belongs to: a username
// maps to itself, an alias (AliasAttrs, e.g. the part of a
// userPrincipalName before the '@') to its owner. The server binds the
// session to the returned name.
func (d *Directory) Resolve(login string) (string, bool) {
	sn := d.snap.Load()
	if sn == nil {
		return "", false
	}
	if _, ok := sn.byName[login]; ok {
		return login, true
	}
	if i, ok := sn.alias[login]; ok {
		return sn.people[i].Username, true
	}
	return "", false
}

// Colleagues returns the people who share a shared-roster group with
// username, sorted by username, each with only the groups they share.
// It returns nil for an unknown user or one without groups. Photo is nil.
func (d *Directory) Colleagues(username string) []Person {
	return d.snap.Load().colleagues(username)
}

// People returns every user who may log in, sorted by username.
func (d *Directory) People() []Person {
	sn := d.snap.Load()
	if sn == nil {
		return nil
	}
	out := make([]Person, len(sn.people))
	for i := range sn.people {
		out[i] = sn.people[i].Person
	}
	return out
}

// Stats are counters for metrics and logs.
type Stats struct {
	Users    int // may log in
	Inactive int // matched the user filter but cannot log in (disabled, invalid or duplicate name)
	Disabled int // of which disabled, locked or expired
	Groups   int // shared-roster groups with members

	Server       string    // URL the last sync read from
	LastSync     time.Time // zero before the first sync
	LastFullSync time.Time

	Syncs, SyncFailures uint64
	Logins              uint64 // successful
	LoginsRefused       uint64 // bad credentials
	LoginsUnavailable   uint64 // directory unreachable: temporary-auth-failure
	StoreErrors         uint64 // snapshots that could not be saved
	LastError           string // of the last failed sync, "" after a good one
}

// Stats returns the current counters.
func (d *Directory) Stats() Stats {
	st := Stats{
		Syncs: d.stats.syncs.Load(), SyncFailures: d.stats.syncFailures.Load(),
		Logins: d.stats.logins.Load(), LoginsRefused: d.stats.loginsRefused.Load(),
		LoginsUnavailable: d.stats.loginsUnavailable.Load(), StoreErrors: d.stats.storeErrors.Load(),
	}
	if e := d.stats.lastErr.Load(); e != nil {
		st.LastError = *e
	}
	if sn := d.snap.Load(); sn != nil {
		st.Users, st.Inactive, st.Disabled, st.Groups = len(sn.people), len(sn.inactive), sn.disabled, len(sn.groupNames)
		st.Server, st.LastSync, st.LastFullSync = sn.meta.url, sn.meta.syncedAt, sn.meta.fullAt
	}
	return st
}

// addPhotos stores new photos. Rewriting a shard also drops the entries
// keep rejects: orphans of an interrupted earlier sync.
func (d *Directory) addPhotos(pending map[string]photo, keep func(hash string) bool) error {
	if len(pending) == 0 {
		return nil
	}
	if d.st == nil {
		d.memMu.Lock()
		maps.Copy(d.memPhotos, pending)
		d.memMu.Unlock()
		return nil
	}
	byShard := map[string][]string{}
	for h := range pending {
		byShard[shardOf(h)] = append(byShard[shardOf(h)], h)
	}
	for _, shard := range slices.Sorted(maps.Keys(byShard)) {
		old, err := d.st.Get(kvPhotoBucket, shard)
		if err != nil {
			return err
		}
		have := map[string]bool{}
		var buf []byte
		err = walkPhotoShard(old, func(h string, p photo) bool {
			if keep(h) || pending[h].data != nil {
				have[h] = true
				buf = appendPhoto(buf, h, p)
			}
			return true
		})
		if err != nil {
			d.log.Warn("ldapsync: rewriting a corrupt photo shard", "shard", shard, "err", err)
		}
		for _, h := range byShard[shard] {
			if !have[h] {
				buf = appendPhoto(buf, h, pending[h])
			}
		}
		if err := d.st.Put(kvPhotoBucket, shard, buf); err != nil {
			return err
		}
	}
	return nil
}

// removePhotos drops the stored photos in gone.
func (d *Directory) removePhotos(gone map[string]bool) error {
	if len(gone) == 0 {
		return nil
	}
	if d.st == nil {
		d.memMu.Lock()
		for h := range gone {
			delete(d.memPhotos, h)
		}
		d.memMu.Unlock()
		return nil
	}
	shards := map[string]bool{}
	for h := range gone {
		shards[shardOf(h)] = true
	}
	for _, shard := range slices.Sorted(maps.Keys(shards)) {
		old, err := d.st.Get(kvPhotoBucket, shard)
		if err != nil {
			return err
		}
		var buf []byte
		walkPhotoShard(old, func(h string, p photo) bool {
			if !gone[h] {
				buf = appendPhoto(buf, h, p)
			}
			return true
		})
		if len(buf) == 0 {
			err = d.st.Delete(kvPhotoBucket, shard)
		} else {
			err = d.st.Put(kvPhotoBucket, shard, buf)
		}
		if err != nil {
			return err
		}
	}
	return nil
}

func (d *Directory) loadPhoto(hash string) (photo, bool, error) {
	if d.st == nil {
		d.memMu.Lock()
		defer d.memMu.Unlock()
		p, ok := d.memPhotos[hash]
		return p, ok, nil
	}
	b, err := d.st.Get(kvPhotoBucket, shardOf(hash))
	if err != nil {
		return photo{}, false, fmt.Errorf("ldapsync: photo: %w", err)
	}
	var out photo
	found := false
	err = walkPhotoShard(b, func(h string, p photo) bool {
		if h == hash {
			out, found = p, true
			return false
		}
		return true
	})
	if err != nil && !found {
		return photo{}, false, fmt.Errorf("ldapsync: photo shard %s: %w", shardOf(hash), err)
	}
	return out, found, nil
}
