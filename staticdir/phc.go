package staticdir

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"golang.org/x/crypto/argon2"
)

// Parameters of HashPassword: the minimum OWASP's Password Storage Cheat
// Sheet recommends for Argon2id (19 MiB, 2 passes, 1 lane), with the salt
// and tag lengths RFC 9106 §3.1 recommends.
const (
	hashMemory  = 19 * 1024 // KiB
	hashTime    = 2
	hashThreads = 1
	saltLen     = 16
	keyLen      = 32
)

// Bounds on parameters read from a PHC string. Any hash within them is
// accepted; they keep a hand-edited or hostile config from making every
// login allocate gigabytes or run for minutes.
const (
	maxMemory  = 1 << 20 // KiB: 1 GiB
	maxTime    = 1024
	minSaltLen = 8 // RFC 9106 §3.1
	maxSaltLen = 64
	minKeyLen  = 16
	maxKeyLen  = 128
)

// argon2Version is the only version golang.org/x/crypto/argon2 computes
// (0x13, RFC 9106 §3.1).
const argon2Version = argon2.Version

// phc is a parsed "$argon2id$v=19$m=..,t=..,p=..$salt$key" string (the
// PHC string format, as written by the reference implementation).
type phc struct {
	memory  uint32 // KiB
	time    uint32
	threads uint8
	salt    []byte
	key     []byte
}

// params identifies the cost of a hash, to pick the dummy hash that
// unknown users are checked against.
type params struct {
	memory, time uint32
	threads      uint8
	keyLen       int
}

func (h *phc) params() params {
	return params{memory: h.memory, time: h.time, threads: h.threads, keyLen: len(h.key)}
}

func (h *phc) String() string {
	return fmt.Sprintf("$argon2id$v=%d$m=%d,t=%d,p=%d$%s$%s", argon2Version, h.memory, h.time, h.threads,
		base64.RawStdEncoding.EncodeToString(h.salt), base64.RawStdEncoding.EncodeToString(h.key))
}

// HashPassword returns the PHC string `xmppd passwd` prints:
// $argon2id$v=19$m=19456,t=2,p=1$<salt>$<hash>, with a random 16-byte
// salt, a 32-byte hash and unpadded standard base64.
func HashPassword(password string) (string, error) {
	return hashWith(password, hashMemory, hashTime, hashThreads)
}

// hashWith is HashPassword with other costs, for tests.
func hashWith(password string, memory, time uint32, threads uint8) (string, error) {
	salt := make([]byte, saltLen)
	if _, err := rand.Read(salt); err != nil {
		return "", fmt.Errorf("staticdir: hash password: %w", err)
	}
	h := phc{memory: memory, time: time, threads: threads, salt: salt}
	h.key = argon2.IDKey([]byte(password), salt, h.time, h.memory, h.threads, keyLen)
	return h.String(), nil
}

// VerifyPassword reports whether password matches the argon2id PHC string,
// comparing in constant time. It accepts any parameters within bounds
// (memory up to 1 GiB), not only those HashPassword uses. The error
// reports a malformed PHC string, never a wrong password.
//
// The password is compared as the UTF-8 bytes given: callers wanting
// RFC 8265 §4.2 (OpaqueString) equivalence must prepare it before both
// hashing and verifying.
func VerifyPassword(phcString, password string) (bool, error) {
	h, err := parsePHC(phcString)
	if err != nil {
		return false, err
	}
	return h.verify(argon2.IDKey, password), nil
}

// idKeyFunc has the signature of argon2.IDKey; Directory holds one so
// tests can count and speed up verifications.
type idKeyFunc func(password, salt []byte, time, memory uint32, threads uint8, keyLen uint32) []byte

func (h *phc) verify(idKey idKeyFunc, password string) bool {
	k := idKey([]byte(password), h.salt, h.time, h.memory, h.threads, uint32(len(h.key)))
	return subtle.ConstantTimeCompare(k, h.key) == 1
}

var errPHC = errors.New("staticdir: malformed argon2id PHC string")

// parsePHC parses and bounds-checks an argon2id PHC string.
func parsePHC(s string) (*phc, error) {
	fields := strings.Split(s, "$")
	// "", "argon2id", "v=19", "m=..,t=..,p=..", salt, key
	if len(fields) != 6 || fields[0] != "" {
		return nil, fmt.Errorf("%w: want $argon2id$v=19$m=<KiB>,t=<passes>,p=<lanes>$<salt>$<hash>", errPHC)
	}
	if fields[1] != "argon2id" {
		return nil, fmt.Errorf("%w: algorithm %q, want argon2id", errPHC, fields[1])
	}
	if fields[2] != "v="+strconv.Itoa(argon2Version) {
		return nil, fmt.Errorf("%w: version %q, want v=%d", errPHC, fields[2], argon2Version)
	}

	h := &phc{}
	var seen [3]bool
	for kv := range strings.SplitSeq(fields[3], ",") {
		k, v, ok := strings.Cut(kv, "=")
		if !ok {
			return nil, fmt.Errorf("%w: parameter %q is not name=value", errPHC, kv)
		}
		i := strings.Index("mtp", k)
		if len(k) != 1 || i < 0 {
			return nil, fmt.Errorf("%w: unknown parameter %q", errPHC, k)
		}
		if seen[i] {
			return nil, fmt.Errorf("%w: parameter %q repeated", errPHC, k)
		}
		seen[i] = true
		n, err := strconv.ParseUint(v, 10, 32)
		if err != nil || v != strconv.FormatUint(n, 10) { // no signs, no leading zeros (PHC format)
			return nil, fmt.Errorf("%w: parameter %q is not a decimal number", errPHC, kv)
		}
		switch k {
		case "m":
			h.memory = uint32(n)
		case "t":
			h.time = uint32(n)
		case "p":
			if n > 255 {
				return nil, fmt.Errorf("%w: p=%d, want 1 to 255", errPHC, n)
			}
			h.threads = uint8(n)
		}
	}
	switch {
	case !seen[0] || !seen[1] || !seen[2]:
		return nil, fmt.Errorf("%w: parameters %q need m, t and p", errPHC, fields[3])
	case h.threads < 1:
		return nil, fmt.Errorf("%w: p=0, want 1 to 255", errPHC)
	case h.time < 1 || h.time > maxTime:
		return nil, fmt.Errorf("%w: t=%d, want 1 to %d", errPHC, h.time, maxTime)
	case h.memory < 8*uint32(h.threads) || h.memory > maxMemory: // RFC 9106 §3.1: m >= 8p
		return nil, fmt.Errorf("%w: m=%d, want %d to %d KiB", errPHC, h.memory, 8*uint32(h.threads), maxMemory)
	}

	var err error
	if h.salt, err = base64.RawStdEncoding.Strict().DecodeString(fields[4]); err != nil {
		return nil, fmt.Errorf("%w: salt is not unpadded base64: %v", errPHC, err)
	}
	if h.key, err = base64.RawStdEncoding.Strict().DecodeString(fields[5]); err != nil {
		return nil, fmt.Errorf("%w: hash is not unpadded base64: %v", errPHC, err)
	}
	if n := len(h.salt); n < minSaltLen || n > maxSaltLen {
		return nil, fmt.Errorf("%w: salt is %d bytes, want %d to %d", errPHC, n, minSaltLen, maxSaltLen)
	}
	if n := len(h.key); n < minKeyLen || n > maxKeyLen {
		return nil, fmt.Errorf("%w: hash is %d bytes, want %d to %d", errPHC, n, minKeyLen, maxKeyLen)
	}
	return h, nil
}
