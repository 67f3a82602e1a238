package staticdir

import (
	"encoding/base64"
	"errors"
	"regexp"
	"strings"
	"testing"

	"golang.org/x/crypto/argon2"
)

// cheapHash makes a valid PHC string with tiny parameters, so tests that
// only need "some hash" stay fast.
func cheapHash(t testing.TB, password string) string {
	t.Helper()
	salt := []byte("0123456789abcdef")
	h := phc{memory: 64, time: 1, threads: 1, salt: salt}
	h.key = argon2.IDKey([]byte(password), salt, h.time, h.memory, h.threads, 32)
	return h.String()
}

func TestHashPassword(t *testing.T) {
	// Two real hashes (19 MiB each): the exact format, and random salts.
	a, err := HashPassword("correct horse battery staple")
	if err != nil {
		t.Fatal(err)
	}
	b, err := HashPassword("correct horse battery staple")
	if err != nil {
		t.Fatal(err)
	}
	re := regexp.MustCompile(`^\$argon2id\$v=19\$m=19456,t=2,p=1\$([A-Za-z0-9+/]{22})\$([A-Za-z0-9+/]{43})$`)
	for _, h := range []string{a, b} {
		m := re.FindStringSubmatch(h)
		if m == nil {
			t.Fatalf("HashPassword = %q, not the expected PHC form", h)
		}
		if salt, _ := base64.RawStdEncoding.DecodeString(m[1]); len(salt) != 16 {
			t.Errorf("salt is %d bytes, want 16", len(salt))
		}
	}
	if a == b {
		t.Error("two hashes of the same password are equal: salt not random")
	}
	if ok, err := VerifyPassword(a, "correct horse battery staple"); !ok || err != nil {
		t.Errorf("VerifyPassword(right) = %v, %v", ok, err)
	}
	if ok, err := VerifyPassword(b, "correct horse battery stapler"); ok || err != nil {
		t.Errorf("VerifyPassword(wrong) = %v, %v", ok, err)
	}
}

// TestPasswordBytes round-trips awkward passwords, with cheap parameters.
func TestPasswordBytes(t *testing.T) {
	for _, pw := range []string{
		"",
		"pässwörd",     // Latin-1 range
		"密码🔑",          // CJK and an emoji (4-byte UTF-8)
		"\u00e9",       // é precomposed (NFC)
		"e\u0301",      // é decomposed (NFD): a different password
		"tab\tand\nnl", // control characters are just bytes
		"nul\x00byte",
		strings.Repeat("long", 1000),
	} {
		h, err := hashWith(pw, 64, 1, 1)
		if err != nil {
			t.Fatal(err)
		}
		if ok, err := VerifyPassword(h, pw); !ok || err != nil {
			t.Errorf("VerifyPassword(hash of %q) = %v, %v", pw, ok, err)
		}
		if ok, err := VerifyPassword(h, pw+"x"); ok || err != nil {
			t.Errorf("VerifyPassword(%q+x) = %v, %v", pw, ok, err)
		}
	}

	// Passwords are bytes: NFC and NFD forms of é do not match.
	h, _ := hashWith("\u00e9", 64, 1, 1)
	if ok, _ := VerifyPassword(h, "e\u0301"); ok {
		t.Error("NFD password matched the NFC hash; VerifyPassword must compare bytes")
	}
}

// TestVerifyPasswordReference checks interoperability with the reference
// implementation (phc-winner-argon2 src/test.c vectors), including
// parameters other than ours. Its 64 MiB vectors pass too but are left
// out: under -race each takes seconds.
func TestVerifyPasswordReference(t *testing.T) {
	for _, tc := range []struct {
		phc, password string
		want          bool
	}{
		{"$argon2id$v=19$m=256,t=2,p=1$c29tZXNhbHQ$nf65EOgLrQMR/uIPnA4rEsF5h7TKyQwu9U1bMCHGi/4", "password", true},
		{"$argon2id$v=19$m=256,t=2,p=2$c29tZXNhbHQ$bQk8UB/VmZZF4Oo79iDXuL5/0ttZwg2f/5U52iv1cDc", "password", true},
		{"$argon2id$v=19$m=256,t=2,p=1$c29tZXNhbHQ$nf65EOgLrQMR/uIPnA4rEsF5h7TKyQwu9U1bMCHGi/4", "sassword", false},
		{"$argon2id$v=19$m=256,t=2,p=1$c29tZXNhbHQ$nf65EOgLrQMR/uIPnA4rEsF5h7TKyQwu9U1bMCHGi/4", "", false},
	} {
		t.Run("", func(t *testing.T) {
			t.Parallel()
			ok, err := VerifyPassword(tc.phc, tc.password)
			if err != nil || ok != tc.want {
				t.Errorf("VerifyPassword(%s, %q) = %v, %v; want %v", tc.phc, tc.password, ok, err, tc.want)
			}
		})
	}
}

func TestVerifyPasswordMalformed(t *testing.T) {
	const salt, key = "c29tZXNhbHQ", "nf65EOgLrQMR/uIPnA4rEsF5h7TKyQwu9U1bMCHGi/4"
	for _, tc := range []struct{ phc, why string }{
		{"", "want $argon2id$v=19$m="},
		{"password", "want $argon2id$v=19$m="},
		{"$argon2id", "want $argon2id$v=19$m="},
		{"$argon2id$v=19$m=256,t=2,p=1$" + salt, "want $argon2id$v=19$m="},
		{"$argon2id$v=19$m=256,t=2,p=1$" + salt + "$" + key + "$", "want $argon2id$v=19$m="},
		{"x$argon2id$v=19$m=256,t=2,p=1$" + salt + "$" + key, "want $argon2id$v=19$m="},
		{"$argon2id$m=256,t=2,p=1$" + salt + "$" + key, "want $argon2id$v=19$m="}, // no version: reference argon2 1.0 form
		{"$argon2i$v=19$m=256,t=2,p=1$" + salt + "$" + key, "algorithm"},
		{"$argon2d$v=19$m=256,t=2,p=1$" + salt + "$" + key, "algorithm"},
		{"$2b$10$" + salt + "$" + key + "$x", "algorithm"},
		{"$argon2id$v=16$m=256,t=2,p=1$" + salt + "$" + key, "version"},
		{"$argon2id$v=019$m=256,t=2,p=1$" + salt + "$" + key, "version"},
		{"$argon2id$v=19$m=256,t=2$" + salt + "$" + key, "need m, t and p"},
		{"$argon2id$v=19$m=256,t=2,p=1,m=256$" + salt + "$" + key, "repeated"},
		{"$argon2id$v=19$m=256,t=2,p=1,keyid=x$" + salt + "$" + key, "unknown parameter"},
		{"$argon2id$v=19$m=256,t=2,p$" + salt + "$" + key, "not name=value"},
		{"$argon2id$v=19$m=256,t=2,p=1,$" + salt + "$" + key, "not name=value"},
		{"$argon2id$v=19$m=0256,t=2,p=1$" + salt + "$" + key, "not a decimal"},
		{"$argon2id$v=19$m=+256,t=2,p=1$" + salt + "$" + key, "not a decimal"},
		{"$argon2id$v=19$m=-1,t=2,p=1$" + salt + "$" + key, "not a decimal"},
		{"$argon2id$v=19$m=x,t=2,p=1$" + salt + "$" + key, "not a decimal"},
		{"$argon2id$v=19$m=99999999999999999999,t=2,p=1$" + salt + "$" + key, "not a decimal"},
		{"$argon2id$v=19$m=1048577,t=2,p=1$" + salt + "$" + key, "m=1048577"}, // over 1 GiB
		{"$argon2id$v=19$m=15,t=2,p=2$" + salt + "$" + key, "m=15"},           // below 8p
		{"$argon2id$v=19$m=256,t=0,p=1$" + salt + "$" + key, "t=0"},
		{"$argon2id$v=19$m=256,t=1025,p=1$" + salt + "$" + key, "t=1025"},
		{"$argon2id$v=19$m=256,t=2,p=0$" + salt + "$" + key, "p=0"},
		{"$argon2id$v=19$m=4096,t=2,p=256$" + salt + "$" + key, "p=256"},
		{"$argon2id$v=19$m=256,t=2,p=1$" + salt + "=$" + key, "salt"},      // padding
		{"$argon2id$v=19$m=256,t=2,p=1$c29tZXNhbHQ-$" + key, "salt"},       // URL alphabet
		{"$argon2id$v=19$m=256,t=2,p=1$" + salt + "$" + key + "=", "hash"}, // padding
		{"$argon2id$v=19$m=256,t=2,p=1$c29tZQ$" + key, "salt is 4 bytes"},
		{"$argon2id$v=19$m=256,t=2,p=1$" + salt + "$c29tZXNhbHQ", "hash is 8 bytes"},
		{"$argon2id$v=19$m=256,t=2,p=1$$" + key, "salt is 0 bytes"},
	} {
		ok, err := VerifyPassword(tc.phc, "password")
		if ok || !errors.Is(err, errPHC) || !strings.Contains(err.Error(), tc.why) {
			t.Errorf("VerifyPassword(%q) = %v, %v; want an error mentioning %q", tc.phc, ok, err, tc.why)
		}
	}
}

// BenchmarkVerifyPassword is the cost of one login with the default
// parameters (what the semaphore in Authenticate rations).
func BenchmarkVerifyPassword(b *testing.B) {
	h, err := HashPassword("correct horse battery staple")
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if ok, _ := VerifyPassword(h, "correct horse battery staple"); !ok {
			b.Fatal("no match")
		}
	}
}
