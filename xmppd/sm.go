package xmppd

import (
	"bytes"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"time"

	"github.com/ownchat/ownchat/store"
	"github.com/ownchat/ownchat/xmppd/wire"
)

// XEP-0198 Stream Management: acknowledgements (§4) and resumption (§5).
//
// Counting. After <enabled/> every stanza queued to the session goes
// through queueLocked, which counts it and keeps it in the session's queue
// of unacknowledged stanzas (the parts as
// queued, shared with the other recipients, never copied) until the client's
// <a h/> covers it. Nonzas (<r/>, <a/>, <enabled/>, <resumed/>) go through
// sendNonza and are not counted (§1: they are not stanzas).
//
// Resumption. A session whose connection is lost without </stream:stream>
// and without a stream error is parked: it stays in the router, keeps its
// presence (no unavailable broadcast) and keeps queueing what is sent to it,
// but no goroutine serves it; a timer ends it when the window has passed.
// <resume/> on a new connection of the same user moves that connection's
// transport into the parked session (adopt). The *conn that the router,
// other sessions and the feature files point to stays the session, so no
// session state is copied or re-pointed.
//
// Ending. When a session with stream management ends for any reason (the
// window passed, closing tag, stream error, shutdown), its unacknowledged
// messages go to offline storage, each exactly once (§4: a server "SHOULD
// treat unacknowledged stanzas in the same way that it would treat a stanza
// sent to an unavailable resource").

const nsSM = "urn:xmpp:sm:3"

// errUndefinedCondition carries XEP-0198's <handled-count-too-high/>.
const errUndefinedCondition streamCondition = "undefined-condition"

const (
	defaultResumeTimeout     = 5 * time.Minute
	defaultMaxUnackedStanzas = 10000

	// The server asks for an ack after smAckEvery unrequested stanzas, or
	// smAckDelay after the first one, so that clients ack in batches and a
	// burst costs one <r/> per smAckEvery stanzas, written in the same flush.
	smAckEvery = 64
	smAckDelay = 500 * time.Millisecond

	// The unacked queue is a list of fixed chunks from a pool shared by all
	// sessions: pushing never copies the queue, acks return whole chunks,
	// and a session whose stanzas are all acked holds no chunk.
	smChunkLen = 32

	// Ended resumable sessions are remembered (user and h) so that a late
	// <resume/> gets <failed h='…'/> (§5); bounded in number and age.
	smTombMax = 4096
	smTombAge = time.Hour
)

var smR = []byte("<r xmlns='" + nsSM + "'/>")

// smLife is where a session with stream management stands. It is guarded
// by the conn's wmu.
type smLife uint8

const (
	smAttached smLife = iota // a connection serves the session
	smParked                 // connection lost; resumable until the expiry timer fires
	smClaimed                // a <resume/> on another connection is taking it over
	smEnding                 // being ended: still queues, no longer resumable
	smEnded                  // over: nothing more is queued
)

// smItem is one unacknowledged stanza as it was queued.
type smItem struct {
	a, b, c []byte // the parts (head, per-recipient piece, tail), shared
	seq     uint64 // offline-store sequence when it came from deliverOffline, else 0
	at      int64  // when it was queued (unix ns), for the XEP-0203 stamp
}

func (it *smItem) size() int { return len(it.a) + len(it.b) + len(it.c) }

func (it *smItem) bytes() []byte {
	b := make([]byte, 0, it.size())
	return append(append(append(b, it.a...), it.b...), it.c...)
}

// smState is a session's stream management state. Everything is guarded by
// the conn's wmu except in, which only the reader serving the session
// touches.
type smState struct {
	id     string        // SM-ID; "" when the client did not ask for resumption
	window time.Duration // resumption window promised in <enabled max='…'/>
	life   smLife

	in    uint32 // stanzas handled from the client, mod 2^32 (§4)
	acked uint32 // the client's last h: our stanzas it has handled, mod 2^32

	// The n unacked stanzas, oldest first, start at first.items[head];
	// last is the chunk pushes go to. bytes is their size.
	first, last *smChunk
	head, n     int
	bytes       int

	unreq    int         // stanzas sent since the last <r/>
	reqArmed bool        // req is pending
	req      *time.Timer // the delayed <r/>
	expiry   *time.Timer // ends a parked session

	// readerDone is closed when the reader serving the session has finished
	// its cleanup; a resumption waits for it before taking the transport.
	readerDone chan struct{}

	// revoked: the server ended the session on purpose (the directory
	// disabled the user, an erasure); no resumption may revive it, not even
	// one that claimed it already (smRevoke).
	revoked bool
	// settled: smRelease has stored the last unacknowledged messages;
	// nothing of the session is written after this (EndUserSessions).
	settled bool
}

// sent is the number of stanzas sent since <enabled/>, mod 2^32.
func (st *smState) sent() uint32 { return st.acked + uint32(st.n) }

type smChunk struct {
	items [smChunkLen]smItem
	next  *smChunk
}

var smChunks = sync.Pool{New: func() any { return new(smChunk) }}

// push keeps one queued stanza until it is acked. It reports false when the
// queue is over its bounds (the stanza is kept all the same).
func (st *smState) push(parts [][]byte, seq uint64, maxN, maxBytes int) bool {
	end := (st.head + st.n) % smChunkLen
	if st.first == nil {
		st.first = smChunks.Get().(*smChunk)
		st.last, st.head, end = st.first, 0, 0
	} else if end == 0 {
		ch := smChunks.Get().(*smChunk)
		st.last.next, st.last = ch, ch
	}
	it := &st.last.items[end]
	*it = smItem{seq: seq, at: time.Now().UnixNano()}
	switch len(parts) {
	case 0:
	case 1:
		it.a = parts[0]
	case 2:
		it.a, it.b = parts[0], parts[1]
	case 3:
		it.a, it.b, it.c = parts[0], parts[1], parts[2]
	default: // nobody sends more pieces today; keep it correct anyway
		it.a, it.b, it.c = parts[0], parts[1], bytes.Join(parts[2:], nil)
	}
	st.n++
	st.bytes += it.size()
	return st.n <= maxN && st.bytes <= maxBytes
}

// pop drops the oldest stanza; an emptied chunk goes back to the pool.
func (st *smState) pop() {
	it := &st.first.items[st.head]
	st.bytes -= it.size()
	*it = smItem{} // drop the references to the shared bytes
	st.n--
	st.head++
	if st.head == smChunkLen || st.n == 0 {
		// Every item of the chunk that was used has been cleared.
		ch := st.first
		st.first, st.head = ch.next, 0
		if st.first == nil {
			st.last = nil
		}
		ch.next = nil
		smChunks.Put(ch)
	}
}

// ack applies the client's h (§4). It reports false, changing nothing, when
// h acknowledges more stanzas than were sent; counters wrap at 2^32, so the
// difference is taken in uint32. maxSeq is the highest offline-store
// sequence among the stanzas acked now (0 if none).
func (st *smState) ack(h uint32) (maxSeq uint64, ok bool) {
	d := h - st.acked
	if d > uint32(st.n) {
		return 0, false
	}
	for i := uint32(0); i < d; i++ {
		maxSeq = max(maxSeq, st.first.items[st.head].seq)
		st.pop()
	}
	st.acked = h
	return maxSeq, true
}

// take removes and returns every unacked stanza, oldest first.
func (st *smState) take() []smItem {
	out := make([]smItem, st.n)
	st.acked += uint32(st.n)
	for i := range out {
		out[i] = st.first.items[st.head]
		st.pop()
	}
	return out
}

// smRegistry maps SM-IDs to resumable sessions, live or parked.
type smRegistry struct {
	mu    sync.Mutex
	byID  map[string]*conn
	tombs map[string]smTomb
	order []string // tombstone ids, oldest first
}

// smTomb remembers an ended resumable session for <failed h='…'/>.
type smTomb struct {
	user string
	h    uint32
	at   time.Time
}

func (r *smRegistry) add(s *Server, id string, c *conn) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	if s.inShut.Load() {
		return false
	}
	if r.byID == nil {
		r.byID = make(map[string]*conn)
	}
	r.byID[id] = c
	return true
}

func (r *smRegistry) lookup(id string) (c *conn, t smTomb, tomb bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if c = r.byID[id]; c != nil {
		return c, smTomb{}, false
	}
	t, tomb = r.tombs[id]
	return nil, t, tomb
}

func (r *smRegistry) remove(id, user string, h uint32) {
	r.mu.Lock()
	defer r.mu.Unlock()
	delete(r.byID, id)
	if r.tombs == nil {
		r.tombs = make(map[string]smTomb)
	}
	now := time.Now()
	r.tombs[id] = smTomb{user: user, h: h, at: now}
	r.order = append(r.order, id)
	for len(r.order) > 0 && (len(r.order) > smTombMax || now.Sub(r.tombs[r.order[0]].at) > smTombAge) {
		delete(r.tombs, r.order[0])
		r.order = r.order[1:]
	}
}

func (r *smRegistry) all() []*conn {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([]*conn, 0, len(r.byID))
	for _, c := range r.byID {
		out = append(out, c)
	}
	return out
}

// registerSM advertises XEP-0198 after authentication and routes its
// nonzas on bound streams (resumption, before binding, comes through
// handleSMUnbound).
func (s *Server) registerSM() {
	if s.ResumeTimeout <= 0 {
		s.ResumeTimeout = defaultResumeTimeout
	}
	if s.MaxUnackedStanzas <= 0 {
		s.MaxUnackedStanzas = defaultMaxUnackedStanzas
	}
	s.extraFeatures = append(s.extraFeatures, []byte("<sm xmlns='"+nsSM+"'/>"))
	s.nonzas[nsSM] = handleSM
}

// sendNonza queues a stream-level element: not counted, never held back.
func (c *conn) sendNonza(b []byte) {
	c.wmu.Lock()
	if !c.wclosed {
		c.wq = append(c.wq, b)
		c.wqBytes += len(b)
		c.startFlushLocked()
	}
	c.wmu.Unlock()
}

// smFailed is <failed/> with a stanza error condition and, when h >= 0, the
// count of stanzas handled (§5).
func smFailed(cond string, h int64) []byte {
	b := []byte("<failed xmlns='" + nsSM + "'")
	if h >= 0 {
		b = append(b, " h='"...)
		b = strconv.AppendInt(b, h, 10)
		b = append(b, '\'')
	}
	b = append(b, "><"...)
	b = append(b, cond...)
	return append(b, " xmlns='"+nsStanzas+"'/></failed>"...)
}

func smAnswer(h uint32) []byte {
	b := make([]byte, 0, 48)
	b = append(b, "<a xmlns='"+nsSM+"' h='"...)
	b = strconv.AppendUint(b, uint64(h), 10)
	return append(b, "'/>"...)
}

// handleSM handles XEP-0198 nonzas on a bound stream.
func handleSM(c *conn, el *wire.Element) bool {
	switch el.Local {
	case "enable":
		return c.smEnable(el)
	case "r":
		// §4: answer at once with the count of handled stanzas.
		if c.sm != nil {
			c.sendNonza(smAnswer(c.sm.in))
		}
		return true
	case "a":
		return c.smAck(el)
	case "resume":
		// §5: resumption replaces binding; this stream is bound already.
		c.sendNonza(smFailed("unexpected-request", -1))
		return true
	}
	c.streamError(errUnsupportedStanza, "")
	return false
}

// handleSMUnbound handles XEP-0198 nonzas after authentication but before
// resource binding: <resume/>, or an <enable/> that comes too early.
func (c *conn) handleSMUnbound(el *wire.Element) bool {
	switch el.Local {
	case "resume":
		return c.smResume(el)
	case "enable", "r", "a":
		// §3: "the client MUST NOT attempt to enable stream management until
		// after it has completed Resource Binding"; the server returns
		// <failed/> when the order is violated.
		c.sendNonza(smFailed("unexpected-request", -1))
		return true
	}
	c.streamError(errNotAuthorized, "authenticate and bind a resource first")
	return false
}

// smEnable implements §3 (and §5 for resume='true').
func (c *conn) smEnable(el *wire.Element) bool {
	s := c.srv
	if c.sm != nil {
		// §3: "If a server receives a second <enable/> element it SHOULD
		// respond with a stream error".
		c.streamError(errPolicyViolation, "stream management is already enabled")
		return false
	}
	st := &smState{window: s.ResumeTimeout, readerDone: make(chan struct{})}
	if v := el.Attr("max"); v != "" {
		// The client's preferred maximum; the server's limit still applies.
		if secs, err := strconv.ParseUint(v, 10, 32); err == nil && secs > 0 && time.Duration(secs)*time.Second < st.window {
			st.window = time.Duration(secs) * time.Second
		}
	}
	if r := el.Attr("resume"); r == "true" || r == "1" {
		// 128 random bits: the SM-ID is the only thing besides the account
		// itself that a resumption presents, so it must not be guessable.
		if id := randomID(16); s.sm.add(s, id, c) {
			st.id = id
		}
	}
	b := make([]byte, 0, 128)
	b = append(b, "<enabled xmlns='"+nsSM+"'"...)
	if st.id != "" {
		b = append(b, " id='"...)
		b = append(b, st.id...)
		b = append(b, "' resume='true' max='"...)
		b = strconv.AppendInt(b, int64((st.window+time.Second-1)/time.Second), 10)
		b = append(b, '\'')
	}
	b = append(b, "/>"...)
	// Counting starts right after <enabled/> (§4): set under the same lock
	// that queues it, so no stanza falls in between.
	c.wmu.Lock()
	if !c.wclosed {
		c.wq = append(c.wq, b)
		c.wqBytes += len(b)
		c.startFlushLocked()
	}
	c.sm = st
	c.wmu.Unlock()
	return true
}

// smAck applies <a h='…'/> (§4).
func (c *conn) smAck(el *wire.Element) bool {
	st := c.sm
	if st == nil {
		return true // nothing to acknowledge
	}
	h, err := strconv.ParseUint(el.Attr("h"), 10, 32)
	if err != nil {
		c.streamError(errBadFormat, "<a/> needs an 'h' attribute with an unsigned 32-bit value")
		return false
	}
	c.wmu.Lock()
	seq, ok := st.ack(uint32(h))
	sent := st.sent()
	c.wmu.Unlock()
	if !ok {
		c.smTooHigh(uint32(h), sent)
		return false
	}
	c.deleteAcked(seq)
	return true
}

// smTooHigh ends the stream of a client that acknowledged more than it was
// sent (§6, "handled-count-too-high").
func (c *conn) smTooHigh(h, sent uint32) {
	c.streamErrorApp(errUndefinedCondition,
		fmt.Sprintf("You acknowledged %d stanzas, but I only sent you %d so far.", h, sent),
		fmt.Sprintf("<handled-count-too-high xmlns='%s' h='%d' send-count='%d'/>", nsSM, h, sent))
}

// deleteAcked removes offline messages the client has now acknowledged
// (deliverOffline leaves them stored until then).
func (c *conn) deleteAcked(seq uint64) {
	if seq == 0 {
		return
	}
	if err := c.srv.Store.DeleteOffline(c.user, seq); err != nil {
		c.srv.Logger.Error("deleting acknowledged offline messages", "user", c.user, "err", err)
	}
}

// smQueueLocked is the stream management part of queueLocked for one
// stanza: it reports whether stream management took charge of it and, if
// so, whether it must also be written now.
func (c *conn) smQueueLocked(parts [][]byte, seq uint64) (managed, write bool, act connAction) {
	st := c.sm
	if st == nil || st.life == smEnded {
		return false, false, 0
	}
	s := c.srv
	if !st.push(parts, seq, s.MaxUnackedStanzas, s.OutQueueBytes) {
		act = actSMOverflow
	}
	if st.life != smAttached || c.wclosed {
		// Kept for the resumption or, if the session ends instead, for
		// offline storage.
		return true, false, act
	}
	return true, true, act
}

// smRequestLocked asks for an ack once enough stanzas went out unrequested,
// or arms the timer that asks a little later.
func (c *conn) smRequestLocked() {
	st := c.sm
	st.unreq++
	if st.unreq >= smAckEvery {
		c.wq = append(c.wq, smR)
		c.wqBytes += len(smR)
		st.unreq = 0
		return
	}
	if !st.reqArmed {
		st.reqArmed = true
		if st.req == nil {
			st.req = time.AfterFunc(smAckDelay, c.smAckTimer)
		} else {
			st.req.Reset(smAckDelay)
		}
	}
}

func (c *conn) smAckTimer() {
	c.wmu.Lock()
	st := c.sm
	st.reqArmed = false
	if st.unreq > 0 && st.life == smAttached && !c.wclosed {
		c.wq = append(c.wq, smR)
		c.wqBytes += len(smR)
		st.unreq = 0
		c.startFlushLocked()
	}
	c.wmu.Unlock()
}

// smResumable reports whether a lost connection would park the session.
func (c *conn) smResumable() bool {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	return c.sm != nil && c.sm.id != "" && !c.noResume
}

// smDetach runs in the reader's cleanup of a bound session. It reports
// whether the session outlives the connection: parked for resumption, or
// already claimed by a resumption on another connection.
func (c *conn) smDetach() bool {
	st := c.sm
	if st == nil {
		return false
	}
	c.wmu.Lock()
	defer c.wmu.Unlock()
	switch {
	case st.life == smClaimed:
		return true
	case st.life != smAttached:
		return false
	case st.id == "" || c.noResume || c.srv.inShut.Load():
		st.life = smEnding // from now on no resumption can claim it
		c.updateHoldLocked()
		return false
	}
	st.life = smParked
	c.wclosed = true
	c.wq, c.wqBytes = nil, 0
	c.p = nil // the reader is done with it; a resumption brings its own
	c.updateHoldLocked()
	st.expiry = time.AfterFunc(st.window, c.smExpire)
	// A parked session has no goroutine; Shutdown waits for it through
	// wg until smShutdown has ended it.
	c.srv.wg.Add(1)
	c.srv.Logger.Info("session detached; resumable", "jid", c.fullJID, "window", st.window)
	return true
}

// smReaderDone tells a waiting resumption that this connection's reader has
// finished with the session.
func (c *conn) smReaderDone() {
	c.wmu.Lock()
	st := c.sm
	var done chan struct{}
	if st != nil {
		done = st.readerDone
	}
	c.wmu.Unlock()
	if done != nil {
		close(done)
	}
}

// smExpire ends a parked session whose window has passed.
func (c *conn) smExpire() {
	c.wmu.Lock()
	st := c.sm
	if st.life != smParked {
		c.wmu.Unlock()
		return // resumed, or ended otherwise
	}
	st.life = smEnding
	c.wmu.Unlock()
	c.srv.Logger.Info("resumable session expired", "jid", c.fullJID)
	c.smEnd(true)
}

// parkedLocked moves a parked session to smEnding and reports whether it
// did; the caller then ends it with smEnd(true). streamError uses it: a
// parked session has no stream to write an error to.
func (c *conn) parkedLocked() bool {
	st := c.sm
	if st == nil || st.life != smParked {
		return false
	}
	st.life = smEnding
	st.expiry.Stop()
	return true
}

// smEnd ends a session that has no reader (parked, or claimed by a
// resumption that failed): unavailable presence, out of the router, unacked
// messages to offline storage. parked releases the parked session's count
// in the server's WaitGroup.
func (c *conn) smEnd(parked bool) {
	c.smStoreUnacked()
	c.unbindSession()
	c.smRelease()
	if parked {
		c.srv.wg.Done()
	}
}

// smStoreUnacked stores what is unacked so far while the session is still
// in the router, so that a new session of the user finds the messages in
// offline storage as soon as this one is gone; smRelease stores what
// arrives in between.
func (c *conn) smStoreUnacked() {
	c.wmu.Lock()
	st := c.sm
	if st == nil || st.life == smEnded {
		c.wmu.Unlock()
		return
	}
	items := st.take()
	c.wmu.Unlock()
	c.storeUnacked(items)
}

// smRelease runs once when a session with stream management is over, after
// it left the router: what is still unacked goes to offline storage.
func (c *conn) smRelease() {
	c.wmu.Lock()
	st := c.sm
	if st == nil || st.life == smEnded {
		c.wmu.Unlock()
		return
	}
	st.life = smEnded
	items := st.take()
	if st.req != nil {
		st.req.Stop()
	}
	if st.expiry != nil {
		st.expiry.Stop()
	}
	c.csiDropLocked()
	h := st.in
	c.wmu.Unlock()
	if st.id != "" {
		c.srv.sm.remove(st.id, c.user, h)
	}
	c.storeUnacked(items)
	c.wmu.Lock()
	st.settled = true
	c.wmu.Unlock()
}

// smRevoke makes the session unresumable for good before the server ends
// it on purpose (CloseUserSessions). A parked session is then ended by the
// stream error at once; the flag is for a session that a <resume/> has
// claimed and is about to adopt: the stream error alone would not stop
// that, since adopt clears noResume, and the disabled user's session would
// live on. adopt finds the flag, ends the session and answers
// <failed><item-not-found/></failed> (§5).
func (c *conn) smRevoke() {
	c.wmu.Lock()
	if c.sm != nil {
		c.sm.revoked = true
	}
	c.wmu.Unlock()
}

// smSettled reports whether the session's end has nothing left to write:
// it never had stream management, or smRelease has stored what was
// unacknowledged. A session leaves the router before smRelease stores what
// arrived while it was leaving, so absence from the router is not enough
// for an erasure to start deleting.
func (c *conn) smSettled() bool {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	return c.sm == nil || c.sm.settled
}

// storeUnacked puts the unacknowledged messages of an ended session into
// offline storage, with the time they were first queued as their XEP-0203
// stamp. Messages that came from offline storage are still there (they are
// deleted only on ack), chat states and other body-less messages are not
// worth keeping (storable), and carbons copies belong to another resource's
// conversation: none of these is stored.
func (c *conn) storeUnacked(items []smItem) {
	s := c.srv
	// Under the user's offline lock, as any offline write: a session of
	// the user becoming available meanwhile reads the store either before
	// (and is handed the messages below) or after these writes.
	unlock := s.lockOffline(c.user)
	n := 0
	full := false
	c.forStorable(items, func(el *wire.Element, at time.Time) {
		if full {
			c.bounceUnstored(el)
			return
		}
		if err := s.storeOfflineAt(c.user, el, at); err != nil {
			// Logged by storeOfflineAt. Once the user's offline storage is
			// full the rest cannot go there either: no need to try each.
			full = errors.Is(err, store.ErrOfflineFull)
			c.bounceUnstored(el)
			return
		}
		n++
	})
	unlock()
	if n == 0 {
		return
	}
	s.Logger.Info("unacknowledged messages stored offline", "jid", c.fullJID, "count", n)
	// A new session of the user (the client reconnected without resuming)
	// may have read the offline store before these messages were in it:
	// the one that takes messages to the bare JID gets them now.
	if best := s.bestSession(c.user, c); best != nil {
		best.deliverOffline()
	}
}

// forStorable calls f, oldest first, for each unacknowledged stanza that
// belongs in offline storage (see storeUnacked), with the time it was
// first queued.
func (c *conn) forStorable(items []smItem, f func(el *wire.Element, at time.Time)) {
	for i := range items {
		it := &items[i]
		if it.seq != 0 || !bytes.HasPrefix(it.a, []byte("<message")) {
			continue
		}
		el, err := wire.ParseElement(it.bytes())
		if err != nil {
			c.srv.Logger.Error("unacked stanza does not parse", "jid", c.fullJID, "err", err)
			continue
		}
		switch el.Attr("type") {
		case "error", "groupchat", "headline":
			continue
		}
		if storable(el) {
			f(el, time.Unix(0, it.at))
		}
	}
}

// bounceUnstored tells the sender of an unacknowledged message that could
// not be stored (XEP-0198 §4 lists "returning an error to the sender" as
// the alternative), if the sender is a session of this server.
func (c *conn) bounceUnstored(el *wire.Element) {
	from := el.Attr("from")
	if _, target, ok := c.srv.resolve(from); ok && target != nil {
		r := errorReply(el, c.bareJID, errServiceUnavailable.withText("the recipient's offline storage is full"))
		deliver(target, r.AppendXML(nil, nsClient))
	}
}

// smResume implements §5 on a stream that is authenticated but not bound.
func (c *conn) smResume(el *wire.Element) bool {
	s := c.srv
	id := el.Attr("previd")
	h, err := strconv.ParseUint(el.Attr("h"), 10, 32)
	if id == "" || err != nil {
		c.sendNonza(smFailed("bad-request", -1))
		return true
	}
	o, tomb, isTomb := s.sm.lookup(id)
	if o == nil || o.user != c.user {
		// Only the same account may resume; anyone else learns nothing,
		// not even whether the SM-ID exists.
		hh := int64(-1)
		if isTomb && tomb.user == c.user {
			hh = int64(tomb.h) // §5: the session timed out; tell what we handled
		}
		c.sendNonza(smFailed("item-not-found", hh))
		return true
	}
	parked, ok, handled := o.smClaim()
	if !ok {
		// Ending as we speak (or another connection resumes it).
		c.sendNonza(smFailed("item-not-found", handled))
		return true
	}
	if !parked {
		// §5: "If the former stream is resumed and the server still has the
		// stream for the previously-identified session open at this time,
		// the server SHOULD send a 'conflict' stream error and close that
		// stream." Its reader then finds the session claimed and leaves it.
		o.streamError(errConflict, "the session was resumed from another connection")
		flushed := make(chan struct{})
		go func() { o.waitFlushed(); close(flushed) }()
		select {
		case <-flushed:
		case <-time.After(time.Second): // the old link is probably dead
		}
		o.close()
	}
	// Its reader (or the cleanup that parked it) may still be finishing.
	o.wmu.Lock()
	done := o.sm.readerDone
	o.wmu.Unlock()
	<-done
	return c.adopt(o, uint32(h), parked)
}

// smClaim reserves a live or parked session for a resumption: its expiry
// timer, its own reader's cleanup and a concurrent resumption then leave it
// alone. parked says which it was. When it cannot be claimed because it is
// ending, h is what it handled (-1 otherwise: another resumption has it).
func (o *conn) smClaim() (parked, ok bool, h int64) {
	o.wmu.Lock()
	defer o.wmu.Unlock()
	st := o.sm
	switch st.life {
	case smParked:
		// If the timer fired already, smExpire finds it claimed and returns.
		st.expiry.Stop()
		parked = true
	case smAttached:
	case smClaimed:
		return false, false, -1
	default:
		return false, false, int64(st.in) // no reader counts any more
	}
	st.life = smClaimed
	o.updateHoldLocked()
	return parked, true, -1
}

// adopt moves this connection (authenticated as o's user, not bound) into
// the claimed session o: <resumed/>, then the stanzas the client has not
// handled, then whatever was held back, and from then on this connection's
// reader serves o (serve follows resumedInto).
func (c *conn) adopt(o *conn, h uint32, parked bool) bool {
	s := c.srv
	c.waitFlushed() // our features are on the wire before o writes to the socket
	s.mu.Lock()
	o.wmu.Lock()
	for o.flushing {
		// The old transport's flusher fails fast on its closed socket.
		o.wcond.Wait()
	}
	st := o.sm
	seq, ok := st.ack(h)
	if !ok || s.closed || st.revoked {
		sent := st.sent()
		st.life = smEnding
		o.wmu.Unlock()
		s.mu.Unlock()
		o.smEnd(parked)
		if !ok {
			c.smTooHigh(h, sent)
			return false
		}
		c.sendNonza(smFailed("item-not-found", -1))
		return true
	}
	b := make([]byte, 0, 96)
	b = append(b, "<resumed xmlns='"+nsSM+"' h='"...)
	b = strconv.AppendUint(b, uint64(st.in), 10)
	b = append(b, "' previd='"...)
	b = append(b, st.id...)
	b = append(b, "'/>"...)
	o.nc = c.nc
	o.streamID = c.streamID // guarded by wmu, like headerSent (true for both)
	o.wclosed, o.closeErr, o.noResume = false, false, false
	o.wq = append(o.wq[:0], b)
	o.wqBytes = len(b)
	// §5: "after processing [h] MUST re-send to the peer any stanzas that
	// are still marked as unhandled". They stay counted as sent.
	ch, k := st.first, st.head
	for i := 0; i < st.n; i++ {
		if k == smChunkLen {
			ch, k = ch.next, 0
		}
		it := &ch.items[k]
		k++
		for _, p := range [3][]byte{it.a, it.b, it.c} {
			if len(p) > 0 {
				o.wq = append(o.wq, p)
				o.wqBytes += len(p)
			}
		}
	}
	st.unreq = 0
	retransmitted := st.n
	if st.n > 0 {
		o.wq = append(o.wq, smR)
		o.wqBytes += len(smR)
	}
	st.life = smAttached
	st.readerDone = make(chan struct{})
	// XEP-0352 §5.2: the client state is not restored on resumption; the
	// stream starts active, so what was held back goes out now.
	if o.csi != nil {
		o.csi.inactive = false
	}
	o.updateHoldLocked()
	act := o.csiFlushLocked()
	o.startFlushLocked()
	o.wmu.Unlock()
	delete(s.conns, c)
	s.conns[o] = struct{}{}
	s.mu.Unlock()

	// The old reader is gone (readerDone): its stream fields are ours now.
	o.pmu.Lock() // router.list reads these
	o.ip, o.secure, o.mech = c.ip, c.secure, c.mech
	o.pmu.Unlock()
	o.p = c.p
	o.directTLS = c.directTLS
	o.lang = c.lang
	o.bucket = c.bucket
	o.authed = true
	o.state = stBound
	o.pingOut.Store(false)
	o.nc.SetDeadline(time.Time{}) // the negotiation deadline no longer applies
	c.resumedInto = o
	if parked {
		s.wg.Done()
	}
	s.Logger.Info("session resumed", "jid", o.fullJID, "remote", o.ip, "retransmitted", retransmitted)
	o.doAction(act)
	o.deleteAcked(seq)
	return true
}

// smShutdownWorkers bounds how many parked sessions Shutdown ends at once.
// What ending one still writes by itself (its last activity, through
// bbolt's Batch) shares a commit only with writes that arrive within the
// batch delay; ended one after another every such write waited for a commit
// and fsync of its own. bbolt's MaxBatchSize is 1,000.
const smShutdownWorkers = 1000

// smShutdown ends every parked session (Shutdown) as the expiry of its
// window would, and returns once their writes have landed; live ones end
// with their connections. The unacknowledged messages of all of them are
// stored first, together (storeUnackedBatch): one commit per thousand
// messages instead of one per session. Ended one by one, 1,000 parked
// sessions took 13.7 s and 10,000 took 105 s; now 0.2 s and about 2 s
// (BenchmarkShutdownParked, 2 cores).
func (s *Server) smShutdown() {
	var parked []*conn
	for _, c := range s.sm.all() {
		c.wmu.Lock()
		if c.parkedLocked() {
			parked = append(parked, c)
		}
		c.wmu.Unlock()
	}
	if len(parked) == 0 {
		return
	}
	s.storeUnackedBatch(parked)
	work := make(chan *conn)
	var wg sync.WaitGroup
	for range min(smShutdownWorkers, len(parked)) {
		wg.Go(func() {
			for c := range work {
				c.smEnd(true)
			}
		})
	}
	for _, c := range parked {
		work <- c
	}
	close(work)
	wg.Wait()
	s.Logger.Info("parked sessions ended for shutdown", "sessions", len(parked))
}

// storeUnackedBatch is smStoreUnacked for many ending sessions at once:
// what each has unacknowledged now goes to offline storage in shared
// transactions. What reaches a session after this is stored by its
// smRelease, so every message is stored exactly once.
func (s *Server) storeUnackedBatch(cs []*conn) {
	type origin struct {
		c  *conn
		el *wire.Element
	}
	var (
		msgs []store.OfflinePush
		from []origin
	)
	for _, c := range cs {
		c.wmu.Lock()
		st := c.sm
		var items []smItem
		if st != nil && st.life != smEnded {
			items = st.take()
		}
		c.wmu.Unlock()
		c.forStorable(items, func(el *wire.Element, at time.Time) {
			msgs = append(msgs, store.OfflinePush{User: c.user, Stanza: s.offlineStanza(el, at), Stamp: at.UTC()})
			from = append(from, origin{c, el})
		})
	}
	if len(msgs) == 0 {
		return
	}
	if s.DisableOfflineStore {
		for _, o := range from {
			o.c.bounceUnstored(o.el)
		}
		return
	}
	full, done, err := s.Store.PushOfflineBatch(msgs, s.MaxOfflineMessages)
	if err != nil {
		// Those before the failed transaction are decided; the rest get
		// writes of their own, as they would have without the batch.
		s.Logger.Error("storing unacknowledged messages in a batch", "err", err)
	}
	stored := 0
	for i, o := range from {
		switch {
		case i >= done:
			if s.storeOfflineAt(o.c.user, o.el, msgs[i].Stamp) != nil { // counts and logs itself
				o.c.bounceUnstored(o.el)
			}
		case full[i]:
			o.c.bounceUnstored(o.el)
		default:
			stored++
		}
	}
	s.metrics.offlineStored.Add(int64(stored))
	s.Logger.Info("unacknowledged messages of ending sessions stored offline", "sessions", len(cs), "messages", stored)
}

// offlineStanza is el as storeOfflineAt stores it: with a XEP-0203 delay
// stamped at (UTC), unless it has one.
func (s *Server) offlineStanza(el *wire.Element, at time.Time) []byte {
	m := el
	if el.Child(nsDelay, "delay") == nil {
		m = el.Copy()
		m.Add(elem(nsDelay, "delay", "from", s.Domain, "stamp", at.UTC().Format("2006-01-02T15:04:05.000Z")))
	}
	return m.AppendXML(nil, nsClient)
}
