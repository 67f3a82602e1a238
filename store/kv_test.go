package store

import (
	"errors"
	"fmt"
	"reflect"
	"testing"

	bolt "go.etcd.io/bbolt"
)

func TestKV(t *testing.T) {
	s := newStore(t)
	type op struct {
		do         string // "put" | "del"
		bucket     string
		key        string
		val        []byte
		wantErr    bool
		getBucket  string
		getKey     string
		wantGet    []byte
		wantGetNil bool
	}
	for i, o := range []op{
		{do: "get", getBucket: "scram", getKey: "alice", wantGetNil: true},
		{do: "put", bucket: "scram", key: "alice", val: []byte("salt+keys"), getBucket: "scram", getKey: "alice", wantGet: []byte("salt+keys")},
		{do: "get", getBucket: "muc", getKey: "alice", wantGetNil: true},
		{do: "put", bucket: "scram", key: "alice", val: []byte("v2"), getBucket: "scram", getKey: "alice", wantGet: []byte("v2")},
		{do: "put", bucket: "scram", key: "empty", val: nil, getBucket: "scram", getKey: "empty", wantGet: []byte{}},
		{do: "put", bucket: "meta", key: "schema", val: []byte("x"), getBucket: "meta", getKey: "schema", wantGet: []byte("x")}, // no clash with the real meta bucket
		{do: "del", bucket: "scram", key: "alice", getBucket: "scram", getKey: "alice", wantGetNil: true},
		{do: "del", bucket: "scram", key: "alice", getBucket: "scram", getKey: "alice", wantGetNil: true},
		{do: "del", bucket: "nope", key: "x", getBucket: "nope", getKey: "x", wantGetNil: true},
		{do: "put", bucket: "", key: "k", val: []byte("v"), wantErr: true},
		{do: "put", bucket: "b", key: "", val: []byte("v"), wantErr: true},
	} {
		var err error
		switch o.do {
		case "put":
			err = s.Put(o.bucket, o.key, o.val)
		case "del":
			err = s.Delete(o.bucket, o.key)
		}
		if (err != nil) != o.wantErr {
			t.Fatalf("op %d: err %v, wantErr %v", i, err, o.wantErr)
		}
		if o.wantErr {
			continue
		}
		got, err := s.Get(o.getBucket, o.getKey)
		if err != nil {
			t.Fatalf("op %d: %v", i, err)
		}
		if o.wantGetNil != (got == nil) || (!o.wantGetNil && !reflect.DeepEqual(got, o.wantGet)) {
			t.Errorf("op %d: Get = %q (nil %v), want %q (nil %v)", i, got, got == nil, o.wantGet, o.wantGetNil)
		}
	}
	if v, err := s.schemaVersion(); err != nil || v != SchemaVersion {
		t.Errorf("kv put into \"meta\" clobbered the schema version: %d %v", v, err)
	}
}

func TestForEach(t *testing.T) {
	s := newStore(t)
	for _, n := range []int{0, 1, forEachChunk - 1, forEachChunk, forEachChunk + 1, 3*forEachChunk + 7} {
		t.Run(fmt.Sprint(n), func(t *testing.T) {
			bucket := fmt.Sprint("b", n)
			want := map[string]string{}
			for i := range n {
				want[fmt.Sprintf("k%05d", i)] = fmt.Sprint("v", i)
			}
			putMany(t, s, bucket, want)
			got := map[string]string{}
			var prev string
			err := s.ForEach(bucket, func(k string, v []byte) error {
				if k <= prev && prev != "" {
					t.Errorf("key %q after %q", k, prev)
				}
				prev = k
				got[k] = string(v)
				return nil
			})
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != len(want) || (n > 0 && !reflect.DeepEqual(got, want)) {
				t.Errorf("visited %d keys, want %d", len(got), len(want))
			}
		})
	}
}

func TestForEachMayWriteAndStop(t *testing.T) {
	s := newStore(t)
	const n = forEachChunk + 44
	all := map[string]string{}
	for i := range n {
		all[fmt.Sprintf("u%04d", i)] = "x"
	}
	putMany(t, s, "ldap", all)
	// fn deletes what it visits and writes elsewhere: no deadlock, no key
	// visited twice or skipped.
	seen := map[string]int{}
	err := s.ForEach("ldap", func(k string, v []byte) error {
		seen[k]++
		if err := s.Delete("ldap", k); err != nil {
			return err
		}
		return s.Put("ldap-done", k, v)
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(seen) != n {
		t.Errorf("visited %d keys, want %d", len(seen), n)
	}
	for k, n := range seen {
		if n != 1 {
			t.Errorf("%s visited %d times", k, n)
		}
	}
	stop := errors.New("stop")
	calls := 0
	err = s.ForEach("ldap-done", func(string, []byte) error {
		calls++
		if calls == 3 {
			return stop
		}
		return nil
	})
	if !errors.Is(err, stop) || calls != 3 {
		t.Errorf("ForEach = %v after %d calls, want stop after 3", err, calls)
	}
}

func TestKVReturnsCopies(t *testing.T) {
	s := newStore(t)
	s.Put("b", "k", []byte("value"))
	v, _ := s.Get("b", "k")
	v[0] = 'X'
	var kept []byte
	s.ForEach("b", func(_ string, val []byte) error { kept = val; return nil })
	kept[0] = 'Y'
	for i := range 100 {
		s.Put("churn", fmt.Sprint(i), make([]byte, 4000))
	}
	if v, _ := s.Get("b", "k"); string(v) != "value" {
		t.Errorf("stored value = %q", v)
	}
}

// putMany fills a kv bucket in one transaction: one fsync instead of one per key.
func putMany(t *testing.T, s *Store, bucket string, kv map[string]string) {
	t.Helper()
	err := s.db.Update(func(tx *bolt.Tx) error {
		b, err := tx.Bucket(bucketKV).CreateBucketIfNotExists([]byte(bucket))
		if err != nil {
			return err
		}
		for k, v := range kv {
			if err := b.Put([]byte(k), []byte(v)); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}
