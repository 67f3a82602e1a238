package store

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"time"

	bolt "go.etcd.io/bbolt"
)

// XEP-0163 Personal Eventing Protocol: each user's bare JID is a pubsub
// service whose nodes live under users/<user>/pep/<node>/ (layout in
// doc.go). Every call is one transaction, so a publish that trims the
// node to max_items, or a precondition checked against the stored
// configuration, never interleaves with another publish.

var (
	subPEP = []byte("pep") // bucket: node name -> node bucket

	pepKeyConfig = []byte("config") // v1 PEPConfig
	pepKeyLen    = []byte("len")    // uint64 BE items in pepItems
	pepItems     = []byte("items")  // bucket: Seq uint64 BE -> v1 item
	pepIDs       = []byte("ids")    // bucket: item id -> Seq uint64 BE
)

// Errors of the PEP calls; callers test them with errors.Is.
var (
	ErrPEPNodeLimit = errors.New("store: too many PEP nodes")
	ErrPEPNoNode    = errors.New("store: no such PEP node")
)

// PEPConfig is the part of a node's XEP-0060 §16.4 configuration that the
// server acts on.
type PEPConfig struct {
	AccessModel  string   // "presence", "open", "roster" or "whitelist"
	RosterGroups []string // roster groups allowed by the "roster" model
	MaxItems     int      // items kept, oldest dropped first; at least 1
	Persist      bool     // false: items are only sent, never stored
	SendLast     string   // "never", "on_sub" or "on_sub_and_presence"
}

// PEPItem is one published item. Payload is the item's single child as
// self-contained XML.
type PEPItem struct {
	ID        string
	Publisher string // bare JID
	Time      time.Time
	Payload   []byte
}

// PEPNode is a node with its configuration and, for PEPNodes, its most
// recent item (nil when it has none).
type PEPNode struct {
	Name   string
	Config PEPConfig
	Last   *PEPItem
}

// PEPPublishRequest describes one publish (XEP-0060 §7.1).
type PEPPublishRequest struct {
	User, Node string
	Item       PEPItem
	// Create is the configuration of a node that does not exist yet
	// (XEP-0163 §7.1 auto-create).
	Create PEPConfig
	// MaxNodes bounds the user's nodes; 0 means no bound.
	MaxNodes int
	// Check, when set, runs inside the transaction with the node's current
	// configuration (exists false: none yet) before anything changes; its
	// error aborts the publish and is returned wrapped. This is how
	// publish-options preconditions (XEP-0060 §7.1.5) see the same state
	// the publish writes to.
	Check func(cfg PEPConfig, exists bool) error
}

// PEPPublish stores an item, replacing an item with the same id, and drops
// the oldest items beyond max_items. It returns the node's configuration
// and whether the node was created.
func (s *Store) PEPPublish(req PEPPublishRequest) (cfg PEPConfig, created bool, err error) {
	if req.User == "" {
		return cfg, false, errEmptyUser
	}
	if req.Node == "" || req.Item.ID == "" {
		return cfg, false, errors.New("store: PEP publish without node or item id")
	}
	err = s.db.Update(func(tx *bolt.Tx) error {
		_, pep, err := createUserSub(tx, req.User, subPEP)
		if err != nil {
			return err
		}
		nb := pep.Bucket([]byte(req.Node))
		exists := nb != nil
		if exists {
			if cfg, err = decodePEPConfig(nb.Get(pepKeyConfig)); err != nil {
				return err
			}
		}
		if req.Check != nil {
			if err := req.Check(cfg, exists); err != nil {
				return err
			}
		}
		if !exists {
			if req.MaxNodes > 0 && countBuckets(pep) >= req.MaxNodes {
				return ErrPEPNodeLimit
			}
			cfg = req.Create
			if nb, err = pep.CreateBucket([]byte(req.Node)); err != nil {
				return err
			}
			if err := nb.Put(pepKeyConfig, appendPEPConfig(nil, cfg)); err != nil {
				return err
			}
			created = true
		}
		if !cfg.Persist {
			// A transient node (XEP-0060 §4.3) keeps nothing: clear what an
			// earlier persistent configuration left.
			return clearPEPItems(nb)
		}
		return putPEPItem(nb, req.Item, cfg.MaxItems)
	})
	if err != nil {
		return cfg, false, fmt.Errorf("store: PEP publish %q node %q: %w", req.User, req.Node, err)
	}
	return cfg, created, nil
}

// PEPCreate creates an empty node (XEP-0060 §8.1); it fails with
// ErrPEPNodeLimit and reports false when the node exists.
func (s *Store) PEPCreate(user, node string, cfg PEPConfig, maxNodes int) (bool, error) {
	if user == "" {
		return false, errEmptyUser
	}
	created := false
	err := s.db.Update(func(tx *bolt.Tx) error {
		_, pep, err := createUserSub(tx, user, subPEP)
		if err != nil {
			return err
		}
		if pep.Bucket([]byte(node)) != nil {
			return nil
		}
		if maxNodes > 0 && countBuckets(pep) >= maxNodes {
			return ErrPEPNodeLimit
		}
		nb, err := pep.CreateBucket([]byte(node))
		if err != nil {
			return err
		}
		created = true
		return nb.Put(pepKeyConfig, appendPEPConfig(nil, cfg))
	})
	if err != nil {
		return false, fmt.Errorf("store: PEP create %q node %q: %w", user, node, err)
	}
	return created, nil
}

// PEPConfigure replaces a node's configuration (XEP-0060 §8.2), trimming
// its items to the new max_items, or all of them when it no longer
// persists items. ErrPEPNoNode when the node does not exist.
func (s *Store) PEPConfigure(user, node string, cfg PEPConfig) error {
	err := s.db.Update(func(tx *bolt.Tx) error {
		nb := pepNode(tx, user, node)
		if nb == nil {
			return ErrPEPNoNode
		}
		if err := nb.Put(pepKeyConfig, appendPEPConfig(nil, cfg)); err != nil {
			return err
		}
		if !cfg.Persist {
			return clearPEPItems(nb)
		}
		return trimPEPItems(nb, cfg.MaxItems)
	})
	if err != nil {
		return fmt.Errorf("store: PEP configure %q node %q: %w", user, node, err)
	}
	return nil
}

// PEPConfig returns a node's configuration; exists is false when there is
// no such node.
func (s *Store) PEPConfig(user, node string) (cfg PEPConfig, exists bool, err error) {
	err = s.db.View(func(tx *bolt.Tx) error {
		nb := pepNode(tx, user, node)
		if nb == nil {
			return nil
		}
		exists = true
		cfg, err = decodePEPConfig(nb.Get(pepKeyConfig))
		return err
	})
	if err != nil {
		return cfg, false, fmt.Errorf("store: PEP config %q node %q: %w", user, node, err)
	}
	return cfg, exists, nil
}

// PEPRetract deletes one item (XEP-0060 §7.2) and reports whether it was
// there. ErrPEPNoNode when the node does not exist.
func (s *Store) PEPRetract(user, node, id string) (bool, error) {
	found := false
	err := s.db.Update(func(tx *bolt.Tx) error {
		nb := pepNode(tx, user, node)
		if nb == nil {
			return ErrPEPNoNode
		}
		ids := nb.Bucket(pepIDs)
		if ids == nil {
			return nil
		}
		seq := ids.Get([]byte(id))
		if seq == nil {
			return nil
		}
		found = true
		if err := nb.Bucket(pepItems).Delete(seq); err != nil {
			return err
		}
		if err := ids.Delete([]byte(id)); err != nil {
			return err
		}
		return nb.Put(pepKeyLen, appendU64(nil, readU64(nb, pepKeyLen)-1))
	})
	if err != nil {
		return false, fmt.Errorf("store: PEP retract %q node %q item %q: %w", user, node, id, err)
	}
	return found, nil
}

// PEPDeleteNode deletes a node and its items (XEP-0060 §8.4) and reports
// whether it existed.
func (s *Store) PEPDeleteNode(user, node string) (bool, error) {
	found := false
	err := s.db.Update(func(tx *bolt.Tx) error {
		pep := userSub(tx, user, subPEP)
		if pep == nil || pep.Bucket([]byte(node)) == nil {
			return nil
		}
		found = true
		return pep.DeleteBucket([]byte(node))
	})
	if err != nil {
		return false, fmt.Errorf("store: PEP delete %q node %q: %w", user, node, err)
	}
	return found, nil
}

// PEPItems returns a node's items in publish order, oldest first: those
// with the given ids (in the order asked, missing ones left out), else the
// newest max (all when max <= 0). ErrPEPNoNode when the node does not
// exist.
func (s *Store) PEPItems(user, node string, ids []string, max int) ([]PEPItem, PEPConfig, error) {
	var (
		items []PEPItem
		cfg   PEPConfig
	)
	err := s.db.View(func(tx *bolt.Tx) error {
		nb := pepNode(tx, user, node)
		if nb == nil {
			return ErrPEPNoNode
		}
		var err error
		if cfg, err = decodePEPConfig(nb.Get(pepKeyConfig)); err != nil {
			return err
		}
		ib, idb := nb.Bucket(pepItems), nb.Bucket(pepIDs)
		if ib == nil || idb == nil {
			return nil
		}
		if len(ids) > 0 {
			for _, id := range ids {
				if seq := idb.Get([]byte(id)); seq != nil {
					it, err := decodePEPItem(ib.Get(seq))
					if err != nil {
						return err
					}
					items = append(items, it)
				}
			}
			return nil
		}
		c := ib.Cursor()
		for k, v := c.Last(); k != nil && (max <= 0 || len(items) < max); k, v = c.Prev() {
			it, err := decodePEPItem(v)
			if err != nil {
				return err
			}
			items = append(items, it)
		}
		for i, j := 0, len(items)-1; i < j; i, j = i+1, j-1 {
			items[i], items[j] = items[j], items[i]
		}
		return nil
	})
	if err != nil {
		return nil, cfg, fmt.Errorf("store: PEP items %q node %q: %w", user, node, err)
	}
	return items, cfg, nil
}

// PEPNodes returns all of a user's nodes in name order, each with its
// configuration and newest item: what a session that becomes available is
// sent (XEP-0163 §4.3.3), read in one transaction.
func (s *Store) PEPNodes(user string) ([]PEPNode, error) {
	var nodes []PEPNode
	err := s.db.View(func(tx *bolt.Tx) error {
		pep := userSub(tx, user, subPEP)
		if pep == nil {
			return nil
		}
		return pep.ForEachBucket(func(name []byte) error {
			nb := pep.Bucket(name)
			cfg, err := decodePEPConfig(nb.Get(pepKeyConfig))
			if err != nil {
				return fmt.Errorf("node %q: %w", name, err)
			}
			n := PEPNode{Name: string(name), Config: cfg}
			if ib := nb.Bucket(pepItems); ib != nil {
				if k, v := ib.Cursor().Last(); k != nil {
					it, err := decodePEPItem(v)
					if err != nil {
						return fmt.Errorf("node %q: %w", name, err)
					}
					n.Last = &it
				}
			}
			nodes = append(nodes, n)
			return nil
		})
	})
	if err != nil {
		return nil, fmt.Errorf("store: PEP nodes of %q: %w", user, err)
	}
	return nodes, nil
}

// UpdatePrivate is a read-modify-write of one XEP-0049 document in one
// transaction: fn gets the stored XML (nil when absent) and returns the
// new one (nil deletes it). Server-side edits such as a room bookmark added
// by the directory use it so they do not lose a client's concurrent set.
func (s *Store) UpdatePrivate(user, key string, fn func(old []byte) ([]byte, error)) error {
	if user == "" {
		return errEmptyUser
	}
	err := s.db.Update(func(tx *bolt.Tx) error {
		_, b, err := createUserSub(tx, user, subPrivate)
		if err != nil {
			return err
		}
		old, err := decodeDoc("private "+key, b.Get([]byte(key)))
		if err != nil {
			return err
		}
		doc, err := fn(old)
		if err != nil {
			return err
		}
		if doc == nil {
			return b.Delete([]byte(key))
		}
		return b.Put([]byte(key), encodeDoc(doc))
	})
	if err != nil {
		return fmt.Errorf("store: update private of %q key %q: %w", user, key, err)
	}
	return nil
}

func pepNode(tx *bolt.Tx, user, node string) *bolt.Bucket {
	if pep := userSub(tx, user, subPEP); pep != nil {
		return pep.Bucket([]byte(node))
	}
	return nil
}

func countBuckets(b *bolt.Bucket) int {
	n := 0
	b.ForEachBucket(func([]byte) error { n++; return nil })
	return n
}

// putPEPItem appends the item under a new Seq (a republished id moves to
// the end: it is now the most recent) and trims to max.
func putPEPItem(nb *bolt.Bucket, it PEPItem, max int) error {
	ib, err := bucketIn(nb, pepItems)
	if err != nil {
		return err
	}
	idb, err := bucketIn(nb, pepIDs)
	if err != nil {
		return err
	}
	n := readU64(nb, pepKeyLen)
	if old := idb.Get([]byte(it.ID)); old != nil {
		if err := ib.Delete(old); err != nil {
			return err
		}
		n--
	}
	seq, err := ib.NextSequence()
	if err != nil {
		return err
	}
	key := appendU64(nil, seq)
	if err := ib.Put(key, appendPEPItem(nil, it)); err != nil {
		return err
	}
	if err := idb.Put([]byte(it.ID), key); err != nil {
		return err
	}
	if err := nb.Put(pepKeyLen, appendU64(nil, n+1)); err != nil {
		return err
	}
	return trimPEPItems(nb, max)
}

// trimPEPItems drops the oldest items beyond max (at least one is kept).
func trimPEPItems(nb *bolt.Bucket, max int) error {
	max = maxInt(max, 1)
	n := readU64(nb, pepKeyLen)
	ib, idb := nb.Bucket(pepItems), nb.Bucket(pepIDs)
	if ib == nil || n <= uint64(max) {
		return nil
	}
	c := ib.Cursor()
	for k, v := c.First(); k != nil && n > uint64(max); k, v = c.First() {
		it, err := decodePEPItem(v)
		if err != nil {
			return err
		}
		if err := c.Delete(); err != nil {
			return err
		}
		if err := idb.Delete([]byte(it.ID)); err != nil {
			return err
		}
		n--
	}
	return nb.Put(pepKeyLen, appendU64(nil, n))
}

func clearPEPItems(nb *bolt.Bucket) error {
	for _, name := range [][]byte{pepItems, pepIDs} {
		if nb.Bucket(name) != nil {
			if err := nb.DeleteBucket(name); err != nil {
				return err
			}
		}
	}
	return nb.Delete(pepKeyLen)
}

func maxInt(a, b int) int {
	if a > b {
		return a
	}
	return b
}

// ---- encodings ---------------------------------------------------------------

func appendBytes(dst, b []byte) []byte {
	dst = binary.AppendUvarint(dst, uint64(len(b)))
	return append(dst, b...)
}

// readBytes decodes appendBytes at v[p:] and returns the bytes (aliasing
// v) and the next position, or ok false when v is short.
func readBytes(v []byte, p int) ([]byte, int, bool) {
	if p > len(v) {
		return nil, p, false
	}
	n, w := binary.Uvarint(v[p:])
	if w <= 0 || uint64(len(v)-p-w) < n {
		return nil, p, false
	}
	p += w
	return v[p : p+int(n)], p + int(n), true
}

// appendPEPConfig: v1 | access | send_last | uvarint max_items | persist
// byte | uvarint count | count × group, strings as uvarint len | bytes.
func appendPEPConfig(dst []byte, c PEPConfig) []byte {
	dst = append(dst, encV1)
	dst = appendBytes(dst, []byte(c.AccessModel))
	dst = appendBytes(dst, []byte(c.SendLast))
	dst = binary.AppendUvarint(dst, uint64(maxInt(c.MaxItems, 0)))
	p := byte(0)
	if c.Persist {
		p = 1
	}
	dst = append(dst, p)
	dst = binary.AppendUvarint(dst, uint64(len(c.RosterGroups)))
	for _, g := range c.RosterGroups {
		dst = appendBytes(dst, []byte(g))
	}
	return dst
}

var errBadPEPRecord = errors.New("truncated PEP record")

func decodePEPConfig(v []byte) (PEPConfig, error) {
	var c PEPConfig
	if len(v) < 1 || v[0] != encV1 {
		return c, fmt.Errorf("PEP config: unknown encoding %v", versionOf(v))
	}
	access, p, ok := readBytes(v, 1)
	if !ok {
		return c, errBadPEPRecord
	}
	sendLast, p, ok := readBytes(v, p)
	if !ok {
		return c, errBadPEPRecord
	}
	max, w := binary.Uvarint(v[p:])
	if w <= 0 || p+w >= len(v) {
		return c, errBadPEPRecord
	}
	p += w
	c.Persist = v[p] == 1
	p++
	count, w := binary.Uvarint(v[p:])
	if w <= 0 || count > uint64(len(v)) {
		return c, errBadPEPRecord
	}
	p += w
	for range count {
		var g []byte
		if g, p, ok = readBytes(v, p); !ok {
			return c, errBadPEPRecord
		}
		c.RosterGroups = append(c.RosterGroups, string(g))
	}
	c.AccessModel, c.SendLast, c.MaxItems = string(access), string(sendLast), int(max)
	return c, nil
}

// appendPEPItem: v1 | time | id | publisher | payload (the rest).
func appendPEPItem(dst []byte, it PEPItem) []byte {
	dst = append(dst, encV1)
	dst = appendTime(dst, it.Time)
	dst = appendBytes(dst, []byte(it.ID))
	dst = appendBytes(dst, []byte(it.Publisher))
	return append(dst, it.Payload...)
}

func decodePEPItem(v []byte) (PEPItem, error) {
	var it PEPItem
	if len(v) < 1+timeLen || v[0] != encV1 {
		return it, fmt.Errorf("PEP item: unknown encoding %v", versionOf(v))
	}
	it.Time = getTime(v[1:])
	id, p, ok := readBytes(v, 1+timeLen)
	if !ok {
		return it, errBadPEPRecord
	}
	pub, p, ok := readBytes(v, p)
	if !ok {
		return it, errBadPEPRecord
	}
	it.ID, it.Publisher, it.Payload = string(id), string(pub), bytes.Clone(v[p:])
	return it, nil
}
