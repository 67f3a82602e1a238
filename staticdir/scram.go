package staticdir

import (
	"bytes"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha1"
	"crypto/sha256"
	"hash"

	"mellium.im/sasl"
)

// scramIterations is the PBKDF2 iteration count of derived SCRAM secrets,
// the minimum RFC 7677 §4 asks for SCRAM-SHA-256.
const scramIterations = 4096

// scramMechs are the SASL mechanisms SaltedPassword serves (RFC 5802,
// RFC 7677). Never the -PLUS variants: mellium's server panics on them.
var scramMechs = [...]struct {
	name string
	hash func() hash.Hash
}{
	{"SCRAM-SHA-1", sha1.New},
	{"SCRAM-SHA-256", sha256.New},
}

func scramMech(mech string) int {
	for i, m := range scramMechs {
		if m.name == mech {
			return i
		}
	}
	return -1
}

// SaltedPassword returns the SCRAM SaltedPassword (RFC 5802 §3) of
// username for mech ("SCRAM-SHA-1" or "SCRAM-SHA-256"), for the
// sasl.SaltedCredentials option of a mellium.im/sasl server. Only users
// with a plaintext password have one (ok=false otherwise): an argon2id hash
// cannot be turned into a SCRAM secret. The secret is derived on first use
// with a random 16-byte salt and 4096 iterations, then cached until the
// process exits. The returned slices are the caller's.
func (d *Directory) SaltedPassword(username, mech string) (salt, salted []byte, iter int, ok bool) {
	m := scramMech(mech)
	e := d.lookup(username)
	if m < 0 || e == nil || e.hash != nil {
		return nil, nil, 0, false
	}
	s := &e.scram[m]
	s.once.Do(func() {
		salt := make([]byte, saltLen)
		if _, err := rand.Read(salt); err != nil {
			panic("staticdir: crypto/rand failed: " + err.Error()) // crypto/rand.Read does not fail since Go 1.24
		}
		s.salt = salt
		s.salted = sasl.SCRAMSaltPassword(scramMechs[m].hash, []byte(e.password), salt, scramIterations)
	})
	return bytes.Clone(s.salt), bytes.Clone(s.salted), scramIterations, true
}

// SCRAMReady reports whether every user has SCRAM material, that is a
// plaintext password; the server advertises SCRAM only then, since a
// client that picks SCRAM cannot fall back to PLAIN after a failure. It is
// true for an empty directory.
func (d *Directory) SCRAMReady() bool { return d.scramReady }

// DecoySaltedPassword returns SCRAM material for a name SaltedPassword has
// none for, so that the server can carry on the exchange and fail it at the
// client proof, as for a wrong password: answering an unknown name at once
// would reveal which names exist. The salt is derived from the name with a
// per-Directory key, so repeated attempts see the same salt, as they would
// for a real user; the salted password matches no password.
func (d *Directory) DecoySaltedPassword(username, mech string) (salt, salted []byte, iter int) {
	m := scramMech(mech)
	if m < 0 {
		m = len(scramMechs) - 1
	}
	mac := hmac.New(sha256.New, d.decoyKey)
	mac.Write([]byte(scramMechs[m].name))
	mac.Write([]byte{0})
	mac.Write([]byte(username))
	sum := mac.Sum(nil)
	salt = sum[:saltLen]
	mac.Write([]byte("salted password"))
	salted = mac.Sum(nil)[:scramMechs[m].hash().Size()]
	return salt, salted, scramIterations
}
