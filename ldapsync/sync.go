package ldapsync

import (
	"context"
	"crypto/sha1"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/go-ldap/ldap/v3"
)

// Sync reads the whole directory now and returns what changed since the
// previous snapshot, which it replaces, in memory and in the store. While
// Run is active, its onDiff also receives the Diff. Only one sync runs at
// a time; a second caller waits.
//
// A sync that would remove or disable more than MaxRemovedFraction of the
// users fails and changes nothing. When only saving to the store fails,
// the new snapshot is in effect and both the Diff and the error are
// returned.
func (d *Directory) Sync(ctx context.Context) (Diff, error) {
	return d.sync(ctx, true)
}

// Run syncs at once, then every SyncInterval until ctx ends: a full sync
// every FullSyncInterval and incremental ones (entries whose ChangeAttr
// moved, plus a sweep of identities for deletions and of the disabled
// filter) in between. After a failed sync it retries sooner, backing off
// from 1s up to SyncInterval; the snapshot keeps being served meanwhile.
// onDiff, which may be nil, is called after every sync that changed
// something, including those started by Sync; it must not call Sync.
func (d *Directory) Run(ctx context.Context, onDiff func(Diff)) {
	if onDiff != nil {
		d.onDiff.Store(&onDiff)
		defer d.onDiff.Store(nil)
	}
	full := true // the stored snapshot may be old, or from another configuration
	backoff := time.Second
	for {
		_, err := d.sync(ctx, full)
		wait := d.s.SyncInterval
		if err != nil && ctx.Err() == nil {
			wait = min(backoff, d.s.SyncInterval)
			backoff *= 2
		} else {
			full, backoff = false, time.Second
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
	}
}

// errNeedFull makes an incremental sync fall back to a full one.
var errNeedFull = errors.New("incremental sync not possible")

// fetched is the directory as read by one sync, before indexing.
type fetched struct {
	users  []userRec
	groups []groupRec
	meta   snapMeta
}

func (d *Directory) sync(ctx context.Context, wantFull bool) (Diff, error) {
	d.syncMu.Lock()
	defer d.syncMu.Unlock()
	start := time.Now()
	prev := d.snap.Load()
	ps := newPhotoSink(d, prev)
	var f *fetched
	err := d.search.do(ctx, func(c *conn) error {
		var err error
		f, err = d.fetch(c, prev, wantFull, ps)
		return err
	})
	if err != nil {
		return Diff{}, d.failed(fmt.Errorf("ldapsync: sync: %w", unavailable(err)))
	}
	next := build(d.s, f.users, f.groups, f.meta, time.Now())
	df := diff(prev, next)
	if prev != nil && d.s.MaxRemovedFraction < 1 {
		lost := len(df.Removed) + len(df.Disabled)
		if lost >= 10 && float64(lost) > d.s.MaxRemovedFraction*float64(len(prev.people)) {
			return Diff{}, d.failed(fmt.Errorf("ldapsync: sync refused: it would remove or disable %d of %d users, more than the allowed share of %g; check the filters, the base DN and the service account's read access, or raise MaxRemovedFraction if this is intended",
				lost, len(prev.people), d.s.MaxRemovedFraction))
		}
	}

	// An unchanged directory costs no write: the snapshot is rewritten
	// when an entry in scope changed (the marks moved) or after a full sync.
	var saveErr error
	if prev == nil || !df.Empty() || len(ps.pending) > 0 || next.meta.userMark != prev.meta.userMark ||
		next.meta.groupMark != prev.meta.groupMark || !next.meta.fullAt.Equal(prev.meta.fullAt) {
		saveErr = d.save(prev, next, ps)
	}
	d.snap.Store(next)
	d.stats.syncs.Add(1)
	d.stats.lastErr.Store(nil)
	d.logInactive(prev, next)
	kind := "incremental"
	if next.meta.fullAt.Equal(next.meta.syncedAt) {
		kind = "full"
	}
	d.log.Info("ldapsync: synced", "kind", kind, "server", next.meta.url, "users", len(next.people),
		"groups", len(next.groupNames), "took", time.Since(start).Round(time.Millisecond), "changes", df.Summary)
	if saveErr != nil {
		d.stats.storeErrors.Add(1)
		saveErr = fmt.Errorf("ldapsync: the sync is in effect but could not be saved: %w", saveErr)
		d.log.Error(saveErr.Error())
	}
	if fn := d.onDiff.Load(); fn != nil && !df.Empty() {
		(*fn)(df)
	}
	return df, saveErr
}

func (d *Directory) failed(err error) error {
	if errors.Is(err, context.Canceled) { // Run stopping, a caller giving up
		d.log.Info("ldapsync: sync interrupted", "err", err)
		return err
	}
	d.stats.syncFailures.Add(1)
	msg := err.Error()
	d.stats.lastErr.Store(&msg)
	d.log.Error(msg)
	return err
}

// save writes next to the store: new photos, the snapshot, then removal
// of photos no longer referenced (see persist.go for why in this order).
func (d *Directory) save(prev, next *snapshot, ps *photoSink) error {
	nextSet := photoSet(next)
	keep := func(h string) bool { return ps.prev[h] || nextSet[h] }
	if err := ps.flush(keep); err != nil {
		return err
	}
	if d.st != nil {
		if err := d.st.Put(kvBucket, kvSnapshot, encodeSnapshot(next)); err != nil {
			return err
		}
	}
	gone := map[string]bool{}
	for h := range ps.prev {
		if !nextSet[h] {
			gone[h] = true
		}
	}
	return d.removePhotos(gone)
}

// logInactive warns once about each entry that newly cannot log in for a
// reason an administrator should fix (disabled users are normal).
func (d *Directory) logInactive(prev, next *snapshot) {
	for id, why := range next.inactive {
		if why != whyBadName && why != whyDuplicate {
			continue
		}
		if prev != nil && prev.inactive[id] == why {
			continue
		}
		u := &next.users[next.userByID[id]]
		d.log.Warn("ldapsync: user skipped", "dn", u.dn, "username", u.raw, "reason", why)
	}
}

// fetch reads the directory on c: incrementally when possible, else in
// full. It may be called again on a fresh connection after a failure.
func (d *Directory) fetch(c *conn, prev *snapshot, wantFull bool, ps *photoSink) (*fetched, error) {
	now := time.Now().UTC()
	incremental := !wantFull && prev != nil && d.s.ChangeAttr != "" && prev.meta.userMark != "" &&
		prev.meta.url == c.url.raw && // uSNChanged counts per server
		d.s.FullSyncInterval >= d.s.SyncInterval && now.Sub(prev.meta.fullAt) < d.s.FullSyncInterval
	if incremental {
		f, err := d.fetchIncremental(c, prev, ps)
		if !errors.Is(err, errNeedFull) {
			if f != nil {
				f.meta.syncedAt = now
			}
			return f, err
		}
		d.log.Info("ldapsync: incremental sync not possible, doing a full sync")
	}
	f, err := d.fetchFull(c, ps)
	if f != nil {
		f.meta.fullAt, f.meta.syncedAt = now, now
	}
	return f, err
}

func (d *Directory) fetchFull(c *conn, ps *photoSink) (*fetched, error) {
	s := d.s
	f := &fetched{meta: snapMeta{url: c.url.raw}}
	err := c.pagedSearch(s.userBase, s.UserFilter, s.userAttrs, s.PageSize, func(e *ldap.Entry) error {
		u := d.userFromEntry(e, ps)
		f.users = append(f.users, u)
		f.meta.userMark = laterMark(f.meta.userMark, u.change)
		return nil
	})
	if err != nil {
		return nil, err
	}
	disabled, err := d.disabledIDs(c)
	if err != nil {
		return nil, err
	}
	for i := range f.users {
		f.users[i].disabled = disabled[f.users[i].id]
	}
	err = c.pagedSearch(s.groupBase, s.GroupFilter, s.groupAttrs, s.PageSize, func(e *ldap.Entry) error {
		g, err := d.groupFromEntry(c, e)
		f.groups = append(f.groups, g)
		f.meta.groupMark = laterMark(f.meta.groupMark, g.change)
		return err
	})
	if err != nil {
		return nil, err
	}
	return f, nil
}

// fetchIncremental reads the entries whose ChangeAttr is at or past the
// marks of prev, and sweeps identities (IDAttr only) to see deletions,
// moves and renames; unchanged entries are taken from prev.
func (d *Directory) fetchIncremental(c *conn, prev *snapshot, ps *photoSink) (*fetched, error) {
	s := d.s
	f := &fetched{meta: prev.meta}
	f.meta.url = c.url.raw

	changed := map[string]userRec{}
	filter := "(&" + s.UserFilter + "(" + s.ChangeAttr + ">=" + ldap.EscapeFilter(prev.meta.userMark) + "))"
	err := c.pagedSearch(s.userBase, filter, s.userAttrs, s.PageSize, func(e *ldap.Entry) error {
		u := d.userFromEntry(e, ps)
		changed[u.id] = u
		f.meta.userMark = laterMark(f.meta.userMark, u.change)
		return nil
	})
	if err != nil {
		return nil, err
	}
	renamed := map[string]string{} // old normalized DN -> new
	seen := map[string]bool{}
	err = c.pagedSearch(s.userBase, s.UserFilter, []string{s.IDAttr}, s.PageSize, func(e *ldap.Entry) error {
		ndn := normDN(e.DN)
		id := entryID(e.Attributes, s.IDAttr, ndn)
		seen[id] = true
		u, ok := changed[id]
		if !ok {
			i, had := prev.userByID[id]
			if !had {
				return errNeedFull // in scope but not seen as changed
			}
			u = prev.users[i]
			u.dn, u.ndn = e.DN, ndn
		}
		if i, had := prev.userByID[id]; had && prev.users[i].ndn != u.ndn {
			renamed[prev.users[i].ndn] = u.ndn
		}
		f.users = append(f.users, u)
		return nil
	})
	if err != nil {
		return nil, err
	}
	for id, u := range changed { // created between the two searches
		if !seen[id] {
			f.users = append(f.users, u)
		}
	}
	disabled, err := d.disabledIDs(c)
	if err != nil {
		return nil, err
	}
	for i := range f.users {
		f.users[i].disabled = disabled[f.users[i].id]
	}

	changedG := map[string]groupRec{}
	filter = s.GroupFilter // no mark yet (no groups last time): read them all
	if prev.meta.groupMark != "" {
		filter = "(&" + s.GroupFilter + "(" + s.ChangeAttr + ">=" + ldap.EscapeFilter(prev.meta.groupMark) + "))"
	}
	err = c.pagedSearch(s.groupBase, filter, s.groupAttrs, s.PageSize, func(e *ldap.Entry) error {
		g, err := d.groupFromEntry(c, e)
		changedG[g.id] = g
		f.meta.groupMark = laterMark(f.meta.groupMark, g.change)
		return err
	})
	if err != nil {
		return nil, err
	}
	seen = map[string]bool{}
	err = c.pagedSearch(s.groupBase, s.GroupFilter, []string{s.IDAttr}, s.PageSize, func(e *ldap.Entry) error {
		ndn := normDN(e.DN)
		id := entryID(e.Attributes, s.IDAttr, ndn)
		seen[id] = true
		g, ok := changedG[id]
		if !ok {
			i, had := prev.groupByID[id]
			if !had {
				return errNeedFull
			}
			g = prev.groups[i]
			g.dn, g.ndn = e.DN, ndn
			// Active Directory rewrites member values when a member is
			// renamed without touching the group's uSNChanged; follow the
			// renames seen in this sync.
			g.members = followRenames(g.members, renamed)
		}
		f.groups = append(f.groups, g)
		return nil
	})
	if err != nil {
		return nil, err
	}
	for id, g := range changedG {
		if !seen[id] {
			f.groups = append(f.groups, g)
		}
	}
	return f, nil
}

func followRenames(members []string, renamed map[string]string) []string {
	if len(renamed) == 0 {
		return members
	}
	var out []string
	for i, m := range members {
		if to, ok := renamed[m]; ok {
			if out == nil {
				out = append(make([]string, 0, len(members)), members[:i]...)
			}
			out = append(out, to)
		} else if out != nil {
			out = append(out, m)
		}
	}
	if out == nil {
		return members
	}
	return out
}

// disabledIDs returns the identities of the users DisabledFilter matches.
// Evaluating the filter on the server keeps it exact for any filter an
// administrator writes, at the cost of one cheap search.
func (d *Directory) disabledIDs(c *conn) (map[string]bool, error) {
	out := map[string]bool{}
	if d.s.DisabledFilter == "" {
		return out, nil
	}
	filter := "(&" + d.s.UserFilter + d.s.DisabledFilter + ")"
	err := c.pagedSearch(d.s.userBase, filter, []string{d.s.IDAttr}, d.s.PageSize, func(e *ldap.Entry) error {
		out[entryID(e.Attributes, d.s.IDAttr, normDN(e.DN))] = true
		return nil
	})
	return out, err
}

func (d *Directory) userFromEntry(e *ldap.Entry, ps *photoSink) userRec {
	s := d.s
	a := entryAttrs(e.Attributes)
	u := userRec{dn: e.DN, ndn: normDN(e.DN)}
	u.id = entryID(a, s.IDAttr, u.ndn)
	u.raw = a.first([]string{s.username})
	u.username, _ = normUsername(u.raw)
	u.display = a.first(s.display)
	if u.display == "" {
		u.display = u.raw
	}
	u.mail, u.title, u.phone, u.dept = a.first(s.mail), a.first(s.title), a.first(s.phone), a.first(s.department)
	u.given, u.surname, u.nick = a.first(s.given), a.first(s.surname), a.first(s.nickname)
	for _, name := range s.aliases {
		for _, v := range a.values(name) {
			v, _, _ = strings.Cut(strings.TrimSpace(v), "@")
			al, ok := normUsername(v)
			if ok && al != u.username && !contains(u.aliases, al) {
				u.aliases = append(u.aliases, al)
			}
		}
	}
	if ps != nil {
		if raw := a.firstRaw(s.photo); raw != nil {
			u.photo, u.photoTyp = ps.add(raw, u.dn)
		}
	}
	if s.ExpiresAttr != "" {
		u.expires = adExpiry(a.first([]string{s.ExpiresAttr}))
	}
	if s.ChangeAttr != "" {
		u.change = a.first([]string{s.ChangeAttr})
	}
	if s.PrimaryGroupAttr != "" {
		u.pgroup = primaryGroupSID(a.firstRaw([]string{sidAttr}), a.first([]string{s.PrimaryGroupAttr}))
	}
	return u
}

func (d *Directory) groupFromEntry(c *conn, e *ldap.Entry) (groupRec, error) {
	s := d.s
	a := entryAttrs(e.Attributes)
	g := groupRec{dn: e.DN, ndn: normDN(e.DN)}
	g.id = entryID(a, s.IDAttr, g.ndn)
	g.name = a.first(s.groupName)
	if s.ChangeAttr != "" {
		g.change = a.first([]string{s.ChangeAttr})
	}
	if s.PrimaryGroupAttr != "" {
		g.sid = sidString(a.firstRaw([]string{sidAttr}))
	}
	if s.MemberAttr != "" {
		vals, err := memberValues(a, s.MemberAttr, func(attr string) (entryAttrs, error) {
			return c.baseAttrs(e.DN, []string{attr})
		})
		if err != nil {
			return g, err
		}
		g.members = make([]string, len(vals))
		for i, v := range vals {
			g.members[i] = normDN(v)
		}
	}
	if s.MemberUIDAttr != "" {
		for _, v := range a.values(s.MemberUIDAttr) {
			if u, ok := normUsername(strings.TrimSpace(v)); ok {
				g.uids = append(g.uids, u)
			}
		}
	}
	return g, nil
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

// adExpiry converts AD's accountExpires (100 ns intervals since 1601, 0
// or 2^63-1 for never) to Unix seconds, 0 for never.
func adExpiry(v string) int64 {
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil || n <= 0 || n == 1<<63-1 {
		return 0
	}
	const epochDiff = 11644473600 // seconds from 1601-01-01 to 1970-01-01
	return n/10_000_000 - epochDiff
}

// laterMark returns the later of two ChangeAttr values: numbers
// (uSNChanged) by value, generalized times (modifyTimestamp, same format
// throughout one server) as strings.
func laterMark(a, b string) string {
	if b == "" {
		return a
	}
	if a == "" {
		return b
	}
	if digits(a) && digits(b) {
		if len(b) > len(a) || len(b) == len(a) && b > a {
			return b
		}
		return a
	}
	if b > a {
		return b
	}
	return a
}

func digits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return s != ""
}

// photoSink collects the photos of one sync. Photos the previous snapshot
// already has are only hashed; new ones are kept until saved, and saved
// early past flushBytes so a first sync of a large directory does not hold
// every photo in memory.
type photoSink struct {
	d       *Directory
	prev    map[string]bool // referenced by the previous snapshot, hence stored
	saved   map[string]bool // stored by an early flush of this sync
	seen    map[string]bool // referenced by this sync so far
	pending map[string]photo
	size    int
	skipped int // too large or not an image
	err     error
}

const flushBytes = 32 << 20

func newPhotoSink(d *Directory, prev *snapshot) *photoSink {
	return &photoSink{d: d, prev: photoSet(prev), saved: map[string]bool{}, seen: map[string]bool{}, pending: map[string]photo{}}
}

func photoSet(sn *snapshot) map[string]bool {
	set := map[string]bool{}
	if sn == nil {
		return set
	}
	for i := range sn.users {
		if h := sn.users[i].photo; h != "" {
			set[h] = true
		}
	}
	return set
}

// add hashes a photo and returns its hash and type, or "" for a photo
// that is skipped.
func (ps *photoSink) add(data []byte, dn string) (hash, typ string) {
	typ = imageType(data)
	if len(data) > ps.d.s.MaxPhotoBytes || typ == "" {
		if ps.skipped == 0 {
			ps.d.log.Warn("ldapsync: photo skipped (too large or not JPEG/PNG/GIF/WebP)", "dn", dn, "bytes", len(data), "max", ps.d.s.MaxPhotoBytes)
		}
		ps.skipped++
		return "", ""
	}
	sum := sha1.Sum(data)
	hash = hex.EncodeToString(sum[:])
	ps.seen[hash] = true
	if ps.prev[hash] || ps.saved[hash] {
		return hash, typ
	}
	if _, ok := ps.pending[hash]; !ok {
		ps.pending[hash] = photo{typ: typ, data: data}
		ps.size += len(data)
		if ps.size > flushBytes && ps.err == nil {
			ps.err = ps.flush(func(h string) bool { return ps.prev[h] || ps.seen[h] })
		}
	}
	return hash, typ
}

// flush stores the pending photos.
func (ps *photoSink) flush(keep func(string) bool) error {
	if ps.err != nil {
		return ps.err
	}
	if err := ps.d.addPhotos(ps.pending, keep); err != nil {
		return err
	}
	for h := range ps.pending {
		ps.saved[h] = true
	}
	clear(ps.pending)
	ps.size = 0
	return nil
}

// imageType recognizes the image formats clients display (XEP-0153 asks
// for image/png, image/jpeg or image/gif).
func imageType(b []byte) string {
	switch {
	case len(b) > 3 && b[0] == 0xff && b[1] == 0xd8 && b[2] == 0xff:
		return "image/jpeg"
	case len(b) > 8 && string(b[:8]) == "\x89PNG\r\n\x1a\n":
		return "image/png"
	case len(b) > 6 && (string(b[:6]) == "GIF87a" || string(b[:6]) == "GIF89a"):
		return "image/gif"
	case len(b) > 12 && string(b[:4]) == "RIFF" && string(b[8:12]) == "WEBP":
		return "image/webp"
	}
	return ""
}
